/**
 * The filesystem store for the conformance suite: a temp folder as the only --allow-path root, and
 * in it one folder per place holding `src` (the source path) and `dst/here` (the sink path, missing
 * until the sink's open creates it).
 */
import { chmod, mkdir, mkdtemp, readdir, readFile, realpath, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import type { ResolvedEndpointT } from '../../protocol/task.ts';
import { filesystemSink, filesystemSource } from '../filesystem/filesystem-connector.ts';
import { STAGING_FOLDER } from '../filesystem/filesystem-config.ts';
import type { ConformanceHarness, ConformancePlace, Dataset, StoredFile } from './conformance-harness.ts';

// Root is not stopped by file modes, so a folder it may not read cannot be made for it.
const RUNNING_AS_ROOT = process.getuid?.() === 0;

export function filesystemHarness(): ConformanceHarness {
  let base = '';
  let allowed = '';
  let places = 0;
  const locked: string[] = [];

  const endpoint = (root: string, folder: string, linkedService: string): ResolvedEndpointT => ({
    type: 'filesystem',
    linkedService,
    properties: { root },
    options: { path: folder },
  });

  return {
    type: 'filesystem',
    kind: 'files',
    source: filesystemSource,
    sink: filesystemSink,
    splitOptions: { filesPerTask: 1 },
    limits: {},
    broken: [
      {
        failure: 'bad_configuration',
        what: 'a relative root',
        endpoints: async () => ({
          source: endpoint('relative/folder', 'src', 'in'),
          sink: endpoint('relative/folder', 'dst', 'out'),
          mentions: ['root'],
          secrets: [],
        }),
      },
      {
        failure: 'unreachable',
        what: 'no address',
        skip: 'a local folder has no network address; an unreachable mount fails with an I/O error (store_error, retryable)',
      },
      {
        failure: 'wrong_credentials',
        what: 'a folder the node user may not enter',
        ...(RUNNING_AS_ROOT
          ? { skip: 'the tests run as root, whom file permissions do not stop' }
          : {
              endpoints: async () => {
                const root = path.join(allowed, `locked-${++places}`);
                await mkdir(path.join(root, 'src'), { recursive: true });
                await chmod(root, 0o000);
                locked.push(root);
                return {
                  source: endpoint(root, 'src', 'in'),
                  sink: endpoint(root, 'dst', 'out'),
                  mentions: [root],
                  secrets: [],
                };
              },
            }),
      },
      {
        failure: 'missing_object',
        what: 'a root that does not exist',
        endpoints: async () => {
          const root = path.join(allowed, 'no-such-root');
          return {
            source: endpoint(root, 'src', 'in'),
            sink: endpoint(root, 'dst', 'out'),
            mentions: [root],
            secrets: [],
          };
        },
      },
    ],

    async start() {
      base = await realpath(await mkdtemp(path.join(os.tmpdir(), 'ferry-conformance-fs-')));
      allowed = path.join(base, 'allowed');
      await mkdir(allowed);
    },

    async stop() {
      for (const folder of locked) await chmod(folder, 0o700).catch(() => {});
      if (base !== '') await rm(base, { recursive: true, force: true });
    },

    allowedRoots: () => [allowed],

    async place(): Promise<ConformancePlace> {
      const root = path.join(allowed, `place-${++places}`);
      const src = path.join(root, 'src');
      // Two levels the sink creates at open, as a sink path may ask for.
      const dst = path.join(root, 'dst', 'here');
      await mkdir(src, { recursive: true });
      let seeded: string[] = [];
      return {
        source: endpoint(root, 'src', 'in'),
        sink: endpoint(root, 'dst/here', 'out'),
        sourceName: src,
        secrets: [],
        async seed(data: Dataset) {
          if (data.kind !== 'files') throw new Error('the filesystem stores files');
          for (const file of data.files) {
            await mkdir(path.dirname(path.join(src, file.name)), { recursive: true });
            await writeFile(path.join(src, file.name), file.data);
          }
          seeded = data.files.map((f) => f.name);
        },
        async unseed() {
          for (const name of seeded) await rm(path.join(src, name));
        },
        async visible() {
          const files: StoredFile[] = [];
          for (const name of await listFiles(dst)) {
            if (name.split('/')[0] === STAGING_FOLDER) continue;
            files.push({ name, data: await readFile(path.join(dst, name)) });
          }
          return { kind: 'files', files };
        },
        async probeLeftovers() {
          // The whole staging folder of the root: nothing else stages there in a place of its own.
          const staging = path.join(root, STAGING_FOLDER);
          let entries: string[];
          try {
            entries = await readdir(staging, { recursive: true });
          } catch (err) {
            if ((err as NodeJS.ErrnoException).code === 'ENOENT') return [];
            throw err;
          }
          return entries.length === 0
            ? [`${STAGING_FOLDER}/`]
            : entries.map((e) => `${STAGING_FOLDER}/${e}`).sort();
        },
        async leftovers() {
          const staging = path.join(dst, STAGING_FOLDER);
          // Empty attempt folders count too: an attempt must leave no trace at all.
          const entries = await readdir(staging, { recursive: true }).catch(missingAsEmpty);
          return entries.map(String).sort();
        },
      };
    },
  };
}

/** Every file below `dir`, relative and '/'-separated; none when it does not exist. */
async function listFiles(dir: string): Promise<string[]> {
  const entries = await readdir(dir, { recursive: true, withFileTypes: true }).catch(missingAsEmpty);
  return entries
    .filter((e) => e.isFile())
    .map((e) => path.relative(dir, path.join(e.parentPath, e.name)).split(path.sep).join('/'))
    .sort();
}

function missingAsEmpty(err: unknown): never[] {
  if ((err as NodeJS.ErrnoException).code === 'ENOENT') return [];
  throw err;
}

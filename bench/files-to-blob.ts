/**
 * files-to-blob: 1 x 1 GiB file, and 2,000 x 256 KiB files, from disk to Azure Blob (Azurite), Ferry
 * (one node, default options) against rclone (BENCHMARKS.md).
 *
 * rclone is tuned first, per set: one run of each of a grid of flags (--transfers,
 * --azureblob-chunk-size, --azureblob-upload-concurrency, --no-check-dest, --azureblob-disable-checksum),
 * and the fastest is the peer in the alternation. Every run writes to a fresh container, which is
 * then read back in full (names, sizes, md5 of the downloaded content) and compared with the source
 * files before it is deleted.
 *
 * Env: BENCH_SETS (big,small), BENCH_SMALL_FILES (2000), BENCH_BIG_MIB (1024), BENCH_RUNS,
 * BENCH_WARMUPS, BENCH_TUNE=0 to skip the tuning and use the flags in BENCH_RCLONE_FLAGS.
 */
import { join } from 'node:path';
import {
  alternate,
  maxRss,
  mib,
  speedRatio,
  type Comparison,
  type Contender,
  type Sample,
} from './alternate.ts';
import { metered } from './process-meter.ts';
import { assertSameBlobs, startAzuriteStore, type AzuriteStore } from './azurite-store.ts';
import { digestTree, writeDataFile, type FileDigest } from './data-files.ts';
import { startFerry, type FerryCluster } from './ferry-cluster.ts';
import { BenchContext, requireFreeDisk, writeResult } from './lib.ts';
import { writeReadmeRow } from './readme-table.ts';
import { requireTools, runCommand } from './tools.ts';
import { tempDir } from '../test/helpers/cluster.ts';

const SMALL_FILES = Number(process.env['BENCH_SMALL_FILES'] ?? 2000);
const BIG_MIB = Number(process.env['BENCH_BIG_MIB'] ?? 1024);
const SETS = (process.env['BENCH_SETS'] ?? 'big,small').split(',') as ('big' | 'small')[];

interface FileSet {
  name: 'big' | 'small';
  dir: string;
  files: Map<string, FileDigest>;
  bytes: number;
  /** rclone flag sets tried in the tuning, the first being rclone's defaults. */
  grid: string[][];
}

const BIG_GRID = [
  [],
  ['--azureblob-chunk-size', '16M'],
  ['--azureblob-chunk-size', '64M'],
  ['--azureblob-chunk-size', '16M', '--azureblob-upload-concurrency', '4'],
  ['--azureblob-chunk-size', '64M', '--azureblob-upload-concurrency', '4'],
  ['--azureblob-chunk-size', '8M', '--azureblob-upload-concurrency', '8', '--azureblob-disable-checksum'],
  ['--azureblob-chunk-size', '16M', '--azureblob-disable-checksum'],
];

const SMALL_GRID = [
  [],
  ['--transfers', '8'],
  ['--transfers', '16'],
  ['--transfers', '32'],
  ['--transfers', '16', '--checkers', '16', '--no-check-dest'],
  ['--transfers', '32', '--checkers', '16', '--no-check-dest'],
  ['--transfers', '64', '--checkers', '16', '--no-check-dest'],
  ['--transfers', '32', '--checkers', '16', '--no-check-dest', '--azureblob-disable-checksum'],
];

async function makeSets(root: string): Promise<FileSet[]> {
  const sets: FileSet[] = [];
  for (const name of SETS) {
    const dir = join(root, name);
    process.stderr.write(`files-to-blob: making the ${name} set...\n`);
    if (name === 'big') {
      await writeDataFile(join(dir, 'one.bin'), BIG_MIB * 2 ** 20, 1);
    } else {
      for (let i = 0; i < SMALL_FILES; i++)
        await writeDataFile(
          join(dir, `d${String(i % 20).padStart(2, '0')}`, `f${String(i).padStart(5, '0')}.bin`),
          256 * 1024,
          1000 + i,
        );
    }
    const files = await digestTree(dir);
    const bytes = [...files.values()].reduce((a, f) => a + f.size, 0);
    sets.push({ name, dir, files, bytes, grid: name === 'big' ? BIG_GRID : SMALL_GRID });
  }
  return sets;
}

let containers = 0;

async function rcloneOnce(store: AzuriteStore, set: FileSet, flags: readonly string[]): Promise<Sample> {
  const container = `rclone-${set.name}-${++containers}`;
  await store.createContainer(container);
  try {
    const { value: r, report } = await metered({ azurite: store.azurite.pid }, () =>
      runCommand([
        'rclone',
        'copy',
        set.dir,
        `:azureblob:${container}`,
        '--azureblob-sas-url',
        store.sasUrl(container),
        '-q',
        ...flags,
      ]),
    );
    assertSameBlobs(`rclone ${flags.join(' ')}`, await store.digest(container), set.files);
    return { ms: r.ms, cpu: { rclone: r.cpuSeconds ?? NaN, ...report.cpu } };
  } finally {
    await store.deleteContainer(container);
  }
}

/** One run of every flag set; the fastest wins. */
async function tuneRclone(store: AzuriteStore, set: FileSet): Promise<{ best: string[]; tried: object[] }> {
  const env = process.env['BENCH_RCLONE_FLAGS'];
  if (process.env['BENCH_TUNE'] === '0')
    return { best: env ? env.split(' ').filter(Boolean) : [], tried: [] };
  await rcloneOnce(store, set, []); // warm-up: page cache, rclone's first start
  const tried: { flags: string; ms: number }[] = [];
  for (const flags of set.grid) {
    const { ms } = await rcloneOnce(store, set, flags);
    process.stderr.write(
      `files-to-blob ${set.name} tuning: rclone ${flags.join(' ') || '(defaults)'} ${(ms / 1000).toFixed(2)} s\n`,
    );
    tried.push({ flags: flags.join(' ') || '(defaults)', ms: Math.round(ms) });
  }
  const fastest = tried.reduce((a, b) => (b.ms < a.ms ? b : a));
  const best = set.grid[tried.indexOf(fastest)]!;
  return { best, tried };
}

function ferryContender(ferry: FerryCluster, store: AzuriteStore, set: FileSet): Contender {
  return {
    name: 'ferry',
    async run(round: number) {
      const container = `ferry-${set.name}-${++containers}`;
      await store.createContainer(container);
      try {
        await ferry.linkedService(container, 'azure-blob', 'one', store.linkedProperties(container));
        const r = await ferry.run('one', {
          name: `blob-${set.name}`,
          activities: [
            {
              name: 'files',
              source: { linkedService: `src-${set.name}` },
              sink: { linkedService: container },
            },
          ],
        });
        assertSameBlobs(`ferry round ${round}`, await store.digest(container), set.files);
        const copies = r.run.tasks.filter((t: any) => t.kind === 'copy').length;
        return { ms: r.ms, rssPeakBytes: r.rssPeakBytes, cpu: r.processes.cpu, detail: { tasks: copies } };
      } finally {
        await store.deleteContainer(container);
      }
    },
  };
}

export async function run(): Promise<void> {
  requireTools(['rclone']);
  const ctx = new BenchContext();
  try {
    const root = tempDir(ctx, 'ferry-bench-blob-');
    // The sources, plus what Azurite holds until its garbage collection frees deleted containers.
    requireFreeDisk(root, 20 * 2 ** 30);
    const sets = await makeSets(root);
    const store = await startAzuriteStore(ctx);
    const ferry = await startFerry(ctx, { gateways: { one: 1 }, allowPaths: [root] });
    ferry.observe = { azurite: store.azurite.pid };
    const results: Record<string, object> = {};
    const cells: string[] = [];
    let metAll = true;
    let rss = 0;
    for (const set of sets) {
      await ferry.linkedService(`src-${set.name}`, 'filesystem', 'one', { root: set.dir });
      const tuning = await tuneRclone(store, set);
      process.stderr.write(
        `files-to-blob ${set.name}: rclone flags ${tuning.best.join(' ') || '(defaults)'}\n`,
      );
      const rclone: Contender = {
        name: 'rclone',
        run: () => rcloneOnce(store, set, tuning.best),
      };
      const c: Comparison = await alternate(`files-to-blob ${set.name}`, [
        ferryContender(ferry, store, set),
        rclone,
      ]);
      const ratio = speedRatio(c, 'ferry', 'rclone');
      rss = Math.max(rss, maxRss(c, 'ferry'));
      metAll &&= ratio.median >= 1.1;
      results[set.name] = {
        files: set.files.size,
        bytes: set.bytes,
        rcloneFlags: tuning.best.join(' ') || '(defaults)',
        rcloneTuning: tuning.tried,
        times: c.times,
        ratio,
        ferryRssPeakMiB: mib(maxRss(c, 'ferry')),
        rounds: c.rounds,
      };
      const mbps = (ms: number): string => `${Math.round(set.bytes / 2 ** 20 / (ms / 1000))} MiB/s`;
      cells.push(
        `${set.name === 'big' ? `1 x ${BIG_MIB} MiB` : `${set.files.size} x 256 KiB`}: ${(c.times['ferry']!.median / 1000).toFixed(1)} s (${mbps(c.times['ferry']!.median)}) vs rclone ${(c.times['rclone']!.median / 1000).toFixed(1)} s (${tuning.best.join(' ') || 'defaults'}), ratio ${ratio.median.toFixed(2)} (${ratio.min.toFixed(2)}-${ratio.max.toFixed(2)})`,
      );
    }
    const result = {
      sets: results,
      target: { ratio: 1.1 },
      meaning: 'ratio = rclone time / Ferry time, round by round (higher is better for Ferry)',
    };
    const file = writeResult('files-to-blob', result);
    writeReadmeRow({
      name: 'files-to-blob',
      work: `1 x ${BIG_MIB} MiB and ${SMALL_FILES} x 256 KiB files to Azurite, Ferry on 1 node`,
      peer: 'rclone 1.60 copy (azureblob via container SAS URL), flags tuned per set',
      Ferry: `${cells.join('; ')}; peak node RSS ${mib(rss)} MiB`,
      target: 'Ferry/rclone >= 1.1 on both sets',
      verdict: metAll ? 'met' : 'not met',
    });
    process.stdout.write(
      `${JSON.stringify(result, (k, v) => (k === 'rounds' ? undefined : v), 2)}\nwritten to ${file}\n`,
    );
  } finally {
    await ctx.close();
  }
}

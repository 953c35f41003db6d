/**
 * What only the filesystem store's connection test does: its root is held to the --allow-path
 * roots, must be a folder, and may not lead its staging folder out through a symlink; its probe is
 * removed without disturbing a sink staging beside it; a folder the node's user may not write is a
 * refused write. The rules every store keeps are in the conformance suite (connection-checks.ts).
 */
import assert from 'node:assert/strict';
import { chmod, mkdir, mkdtemp, readdir, realpath, rm, symlink, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import type { ResolvedEndpointT } from '../../protocol/task.ts';
import type { ConnectorContext } from '../connector.ts';
import { STAGING_FOLDER } from './filesystem-config.ts';
import { filesystemSink, filesystemSource } from './filesystem-connector.ts';
import { rejectsWith } from '../../../test/helpers/rejects-with.ts';

// File modes do not stop root: a folder root may not write cannot be made for it.
const RUNNING_AS_ROOT = process.getuid?.() === 0;
const PROBE = 'ferry_connection_test_0a1b2c';

let base: string; // realpath'd temp dir holding everything this file creates
let allowed: string; // the --allow-path root
let outside: string; // a sibling folder no check may reach

before(async () => {
  base = await realpath(await mkdtemp(path.join(os.tmpdir(), 'ferry-fs-check-')));
  allowed = path.join(base, 'allowed');
  outside = path.join(base, 'outside');
  await mkdir(allowed);
  await mkdir(outside);
});

after(async () => {
  await rm(base, { recursive: true, force: true });
});

let counter = 0;
async function freshRoot(): Promise<string> {
  const dir = path.join(allowed, `case-${++counter}`);
  await mkdir(dir);
  return dir;
}

function linkedService(root: string, name = 'lake'): ResolvedEndpointT {
  return { type: 'filesystem', linkedService: name, properties: { root }, options: {} };
}

function ctx(): ConnectorContext {
  return { signal: new AbortController().signal, allowedRoots: [allowed] };
}

describe('filesystem connection test', () => {
  it('reports the folder it listed and its entries, the staging folder not counted', async () => {
    const root = await freshRoot();
    await writeFile(path.join(root, 'a.csv'), 'a');
    await mkdir(path.join(root, 'sub'));
    await mkdir(path.join(root, STAGING_FOLDER));
    assert.equal(await filesystemSource.checkRead(linkedService(root), ctx()), `listed ${root} (2 entries)`);
    assert.equal(
      await filesystemSink.checkWrite(linkedService(root), ctx(), PROBE),
      `wrote and removed ${STAGING_FOLDER}/${PROBE} in ${root}`,
    );
  });

  it('refuses a root outside the allowed roots (forbidden, hint: --allow-path), writing nothing there', async () => {
    for (const check of [
      filesystemSource.checkRead(linkedService(outside), ctx()),
      filesystemSink.checkWrite(linkedService(outside), ctx(), PROBE),
    ]) {
      const err = await rejectsWith(
        check,
        'forbidden',
        new RegExp(`^filesystem "lake": ${outside} is outside the allowed roots \\(${allowed}\\)`),
      );
      assert.equal(err.hint, `start the node with --allow-path ${outside}`);
    }
    assert.deepEqual(await readdir(outside), []);
  });

  it('fails on a root that is a file or is missing (store_object_missing), creating nothing', async () => {
    const file = path.join(await freshRoot(), 'root.txt');
    await writeFile(file, 'not a folder');
    for (const check of [
      filesystemSource.checkRead(linkedService(file), ctx()),
      filesystemSink.checkWrite(linkedService(file), ctx(), PROBE),
    ]) {
      const err = await rejectsWith(
        check,
        'store_object_missing',
        new RegExp(`^filesystem "lake": ${file} is not a folder \\(test (read|write)\\)$`),
      );
      assert.match(err.hint ?? '', /the root must be a folder on this node/);
    }
    const missing = path.join(allowed, 'no-such-root');
    for (const check of [
      filesystemSource.checkRead(linkedService(missing), ctx()),
      filesystemSink.checkWrite(linkedService(missing), ctx(), PROBE),
    ]) {
      const err = await rejectsWith(
        check,
        'store_object_missing',
        new RegExp(`^filesystem "lake": root ${missing} does not exist \\(resolve root\\)$`),
      );
      assert.equal(
        err.hint,
        `the root must be a folder on this node: create ${missing}, or correct the linked service's root`,
      );
    }
    await assert.rejects(readdir(missing), { code: 'ENOENT' });
  });

  it('refuses a staging folder that is a symlink out of the root, writing nothing where it leads', async () => {
    const root = await freshRoot();
    await symlink(outside, path.join(root, STAGING_FOLDER));
    await rejectsWith(
      filesystemSink.checkWrite(linkedService(root), ctx(), PROBE),
      'forbidden',
      new RegExp(`resolves to ${outside}, outside the root ${root} \\(test write\\)$`),
    );
    assert.deepEqual(await readdir(outside), []);
  });

  it('removes its probe but not the staging folder a sink is staging in', async () => {
    const root = await freshRoot();
    const attempt = path.join(root, STAGING_FOLDER, 't0.a1');
    await mkdir(attempt, { recursive: true });
    await writeFile(path.join(attempt, 'part.csv'), 'staged');
    await filesystemSink.checkWrite(linkedService(root), ctx(), PROBE);
    assert.deepEqual(await readdir(path.join(root, STAGING_FOLDER)), ['t0.a1']);
    assert.deepEqual(await readdir(attempt), ['part.csv']);
  });

  it(
    'refuses writing to a folder the node user may not write, which it may still read',
    { skip: RUNNING_AS_ROOT ? 'the tests run as root, whom file permissions do not stop' : false },
    async () => {
      const root = await freshRoot();
      await chmod(root, 0o555);
      try {
        assert.match(await filesystemSource.checkRead(linkedService(root), ctx()), /^listed /);
        const err = await rejectsWith(
          filesystemSink.checkWrite(linkedService(root), ctx(), PROBE),
          'store_auth',
          /^filesystem "lake": writing is refused: permission denied on .* \(test write\)$/,
        );
        assert.equal(err.retryable, false);
        assert.match(err.hint ?? '', /must be able to create and remove files in/);
      } finally {
        await chmod(root, 0o755);
      }
      assert.deepEqual(await readdir(root), []);
    },
  );
});

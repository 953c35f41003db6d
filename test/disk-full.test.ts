/**
 * A full disk: a sink folder with no room left, and a node whose temporary folder cannot hold a
 * Parquet file it must read whole. Each fails its task with an error that says so and names the
 * place, publishes nothing, leaves no staging behind and loses nothing: with room made, the same
 * pipeline then copies every byte. The full disks are small tmpfs mounts, which needs root.
 */
import { test, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { gzipSync } from 'node:zlib';
import type { TableColumn } from '../src/tables/table-columns.ts';
import { encode, format, generated } from '../src/formats/test-tables.ts';
import {
  gatewayWithNodes,
  makeFiles,
  runPipeline,
  treeDigest,
  waitRun,
  type Gateway,
} from './helpers/scenario.ts';

/** A tmpfs of `size` mounted on a fresh folder, unmounted when the test ends; undefined if not allowed. */
function smallDisk(t: TestContext, size: string): string | undefined {
  const dir = mkdtempSync(join(tmpdir(), 'ferry-full-'));
  try {
    execFileSync('mount', ['-t', 'tmpfs', '-o', `size=${size}`, 'tmpfs', dir], { stdio: 'pipe' });
  } catch (err) {
    rmSync(dir, { recursive: true, force: true });
    t.skip(`cannot mount a small tmpfs here (${String(err).split('\n')[0]}): needs root`);
    return undefined;
  }
  t.after(() => {
    execFileSync('umount', ['-l', dir]);
    rmSync(dir, { recursive: true, force: true });
  });
  return dir;
}

async function linkedService(g: Gateway, name: string, root: string): Promise<void> {
  await g.svc.api.call('POST', '/api/v1/linked-services', {
    name,
    type: 'filesystem',
    gateway: g.gateway,
    properties: { root },
  });
}

test('a sink folder on a full disk fails the task plainly, publishes nothing, and the rerun copies all', async (t) => {
  const full = smallDisk(t, '512k');
  if (!full) return;
  const g = await gatewayWithNodes(t, 1, { nodeArgs: ['--allow-path', full] });
  makeFiles(g.root, 'in', 6, () => 150_000); // 900 KB for a 512 KiB disk
  const before = treeDigest(join(g.root, 'in'));
  await linkedService(g, 'src', join(g.root, 'in'));
  await linkedService(g, 'full', full);
  const pipeline = {
    name: 'fill',
    activities: [
      { name: 'all', source: { linkedService: 'src', filesPerTask: 10 }, sink: { linkedService: 'full' } },
    ],
  };

  const run = await waitRun(g, await runPipeline(g, pipeline));
  assert.equal(run.status, 'failed');
  const copy = run.tasks.find((tk: any) => tk.kind === 'copy');
  assert.match(copy.error, /^filesystem "full": no space left on device writing \S+file-\d{4}\.bin/);
  assert.match(copy.error, /not retried/);
  assert.equal(copy.attempts, 1);
  assert.deepEqual(readdirSync(full), [], 'nothing published, no staging left');
  assert.deepEqual(treeDigest(join(g.root, 'in')), before, 'the source is untouched');

  // Room made: the same pipeline copies every byte.
  execFileSync('mount', ['-o', 'remount,size=4m', full]);
  const rerun = await waitRun(g, await runPipeline(g, pipeline));
  assert.equal(rerun.status, 'succeeded', JSON.stringify(rerun.error));
  assert.deepEqual(treeDigest(full), before);
});

test('a node whose temporary folder is full fails a Parquet read plainly, and reads it once there is room', async (t) => {
  const temp = smallDisk(t, '256k');
  if (!temp) return;
  const g = await gatewayWithNodes(t, 1, { env: { TMPDIR: temp } });
  // A gzipped Parquet file is spooled to the temporary folder: a Parquet reader starts at the footer.
  const columns: TableColumn[] = [
    { name: 'n', type: 'int64', nullable: false },
    { name: 'label', type: 'text', nullable: true },
  ];
  const row = (i: number): string => `${i},${(i * 2654435761).toString(36)}\n`;
  const rows = 100_000;
  const { bytes } = await encode(
    columns,
    generated(rows, row, 'n,label\n').stream,
    format({ format: 'parquet' }),
  );
  const gz = gzipSync(bytes);
  assert.ok(gz.length > 512 * 1024, `${gz.length} bytes gzipped`);
  mkdirSync(join(g.root, 'in'));
  mkdirSync(join(g.root, 'out'));
  writeFileSync(join(g.root, 'in', 'big.parquet.gz'), gz);
  await linkedService(g, 'src', join(g.root, 'in'));
  await linkedService(g, 'dst', join(g.root, 'out'));
  const pipeline = {
    name: 'convert',
    activities: [
      {
        name: 'csv',
        source: { linkedService: 'src', format: 'parquet' },
        sink: { linkedService: 'dst', format: 'csv' },
      },
    ],
  };

  const run = await waitRun(g, await runPipeline(g, pipeline));
  assert.equal(run.status, 'failed');
  const copy = run.tasks.find((tk: any) => tk.kind === 'copy');
  assert.match(
    copy.error,
    /^filesystem source "src": big\.parquet\.gz: no space left in this node's temporary folder \S+ to hold the file while it is read/,
  );
  assert.ok(copy.error.includes(temp), copy.error);
  assert.deepEqual(readdirSync(join(g.root, 'out')), [], 'nothing published, no staging left');
  assert.deepEqual(
    readdirSync(temp).filter((f) => f.startsWith('ferry-parquet-')),
    [],
    'the partial spool is removed',
  );

  execFileSync('mount', ['-o', 'remount,size=8m', temp]);
  const rerun = await waitRun(g, await runPipeline(g, pipeline));
  assert.equal(rerun.status, 'succeeded', JSON.stringify(rerun.error));
  const csv = readdirSync(join(g.root, 'out'));
  assert.deepEqual(csv, ['big.csv']);
  assert.equal(rerun.progress.rows, rows);
});

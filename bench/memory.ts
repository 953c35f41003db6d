/**
 * memory: a 5 GiB file (disk -> disk, and disk -> Azurite) and a 20 M-row table (PostgreSQL -> CSV
 * files) copied by one node; its peak RSS must stay under 256 MB whatever the size (BENCHMARKS.md).
 *
 * "Whatever the size" is shown, not assumed: each workload runs small first (1/16 of the data) and
 * then full size, on the same node, and the node's idle RSS is taken before. A streaming copy peaks
 * at about the same RSS for both; one that buffers grows with the data. Every output is verified (md5
 * of the copied file; row count, id sum and line hash of the CSV). No peer.
 *
 * Env: BENCH_FILE_GIB (5), BENCH_ROWS (20,000,000), BENCH_PARTITIONS (8), BENCH_MEMORY_SETS
 * (fs,blob,table).
 */
import { mkdirSync, readdirSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { mib } from './alternate.ts';
import { assertSameBlobs, startAzuriteStore, type AzuriteStore } from './azurite-store.ts';
import { CsvChecker, digestCsvFiles } from './csv-digest.ts';
import { digestTree, md5File, writeDataFile } from './data-files.ts';
import { startFerry, type FerryCluster } from './ferry-cluster.ts';
import { BenchContext, requireFreeDisk, writeResult } from './lib.ts';
import { createPgTable, PG } from './pg-table.ts';
import { ProcessMeter } from './process-meter.ts';
import { writeReadmeRow } from './readme-table.ts';
import { tempDir } from '../test/helpers/cluster.ts';

const FILE_GIB = Number(process.env['BENCH_FILE_GIB'] ?? 5);
const ROWS = Number(process.env['BENCH_ROWS'] ?? 20_000_000);
const PARTITIONS = Number(process.env['BENCH_PARTITIONS'] ?? 8);
const SETS = (process.env['BENCH_MEMORY_SETS'] ?? 'fs,blob,table').split(',');
const TARGET_BYTES = 256 * 1000 * 1000;

interface Measured {
  workload: string;
  size: string;
  seconds: number;
  mibPerSecond: number;
  rssPeakMiB: number;
  /** The same node's RSS idle just before the copy. */
  idleRssMiB?: number;
  cpuSeconds: Record<string, number>;
}

function measured(
  workload: string,
  size: string,
  bytes: number,
  r: Awaited<ReturnType<FerryCluster['run']>>,
): Measured {
  const m: Measured = {
    workload,
    size,
    seconds: Math.round(r.ms / 100) / 10,
    mibPerSecond: Math.round(bytes / 2 ** 20 / (r.ms / 1000)),
    rssPeakMiB: mib(r.rssPeakBytes),
    cpuSeconds: r.processes.cpu,
  };
  process.stderr.write(
    `memory ${workload} ${size}: ${m.seconds} s, ${m.mibPerSecond} MiB/s, peak RSS ${m.rssPeakMiB} MiB (verified)\n`,
  );
  return m;
}

/**
 * A fresh service and node for each measured copy: a node's RSS keeps what its heap grew to in an
 * earlier copy, so measuring copies one after another on one node would make each depend on the last.
 */
async function onFreshNode(
  root: string,
  store: AzuriteStore | undefined,
  fn: (ferry: FerryCluster) => Promise<Measured>,
): Promise<Measured> {
  const ctx = new BenchContext();
  try {
    const ferry = await startFerry(ctx, { gateways: { one: 1 }, allowPaths: [root] });
    if (store) ferry.observe = { azurite: store.azurite.pid };
    const idle = await idleRss(ferry);
    const m = await fn(ferry);
    m.idleRssMiB = mib(idle);
    return m;
  } finally {
    await ctx.close();
  }
}

async function idleRss(ferry: FerryCluster): Promise<number> {
  const meter = new ProcessMeter(
    Object.fromEntries(ferry.pids('one').map((p) => [String(p), p])),
    ferry.pids('one').map(String),
  );
  meter.start();
  await sleep(2000);
  return meter.stop().peakRssBytes;
}

async function fileCopies(root: string, store: AzuriteStore | undefined): Promise<Measured[]> {
  const out: Measured[] = [];
  const sizes: [string, number][] = [
    [`${(FILE_GIB * 1024) / 16} MiB`, (FILE_GIB * 2 ** 30) / 16],
    [`${FILE_GIB} GiB`, FILE_GIB * 2 ** 30],
  ];
  for (const [label, bytes] of sizes) {
    const src = join(root, `src-${bytes}`);
    process.stderr.write(`memory: making a ${label} file...\n`);
    await writeDataFile(join(src, 'big.bin'), bytes, bytes);
    const want = await digestTree(src);
    if (SETS.includes('fs')) {
      const dest = join(root, `out-${bytes}`);
      mkdirSync(dest);
      out.push(
        await onFreshNode(root, store, async (ferry) => {
          await ferry.linkedService(`src-${bytes}`, 'filesystem', 'one', { root: src });
          await ferry.linkedService(`out-${bytes}`, 'filesystem', 'one', { root: dest });
          const r = await ferry.run('one', {
            name: `fs-${bytes}`,
            activities: [
              {
                name: 'copy',
                source: { linkedService: `src-${bytes}` },
                sink: { linkedService: `out-${bytes}` },
              },
            ],
          });
          const got = await md5File(join(dest, 'big.bin'));
          if (got !== want.get('big.bin')?.md5)
            throw new Error(`disk -> disk ${label}: md5 ${got} differs from the source`);
          rmSync(dest, { recursive: true, force: true });
          return measured('file disk -> disk', label, bytes, r);
        }),
      );
    }
    if (store) {
      const container = `memory-${out.length}`;
      await store.createContainer(container);
      out.push(
        await onFreshNode(root, store, async (ferry) => {
          await ferry.linkedService(`src-${bytes}`, 'filesystem', 'one', { root: src });
          await ferry.linkedService(container, 'azure-blob', 'one', store.linkedProperties(container));
          const r = await ferry.run('one', {
            name: `blob-${bytes}`,
            activities: [
              { name: 'copy', source: { linkedService: `src-${bytes}` }, sink: { linkedService: container } },
            ],
          });
          assertSameBlobs(`disk -> Azurite ${label}`, await store.digest(container), want);
          await store.deleteContainer(container);
          return measured('file disk -> Azurite', label, bytes, r);
        }),
      );
    }
    rmSync(src, { recursive: true, force: true });
  }
  return out;
}

async function tableCopies(ctx: BenchContext, root: string): Promise<Measured[]> {
  const out: Measured[] = [];
  const outRoot = join(root, 'csv');
  mkdirSync(outRoot);
  for (const rows of [ROWS / 16, ROWS]) {
    const table = await createPgTable(ctx, rows, 'ferry_bench_mem');
    out.push(
      await onFreshNode(root, undefined, async (ferry) => {
        await ferry.linkedService('pg', 'postgres', 'one', { ...PG, password: '' });
        await ferry.linkedService('csv', 'filesystem', 'one', { root: outRoot });
        const r = await ferry.run('one', {
          name: `table-${rows}`,
          activities: [
            {
              name: 'orders',
              source: {
                linkedService: 'pg',
                table: `${table.schema}.orders`,
                partitionColumn: 'id',
                partitions: PARTITIONS,
              },
              sink: { linkedService: 'csv', path: `t${rows}` },
            },
          ],
        });
        const dir = join(outRoot, `t${rows}`);
        const files = readdirSync(dir)
          .filter((f) => f.endsWith('.csv'))
          .map((f) => join(dir, f));
        new CsvChecker(table).check(`table ${rows} rows`, await digestCsvFiles(files));
        rmSync(dir, { recursive: true, force: true });
        return measured(
          `table PostgreSQL -> CSV (${PARTITIONS} ranges)`,
          `${rows / 1e6} M rows`,
          table.bytes,
          r,
        );
      }),
    );
    await table.client.query(`DROP SCHEMA "${table.schema}" CASCADE`);
  }
  return out;
}

export async function run(): Promise<void> {
  const ctx = new BenchContext();
  try {
    const root = tempDir(ctx, 'ferry-bench-memory-');
    requireFreeDisk(root, 4 * FILE_GIB * 2 ** 30);
    const store = SETS.includes('blob') ? await startAzuriteStore(ctx) : undefined;
    const runs = [
      ...(SETS.includes('fs') || SETS.includes('blob') ? await fileCopies(root, store) : []),
      ...(SETS.includes('table') ? await tableCopies(ctx, root) : []),
    ];
    const idle = Math.max(...runs.map((r) => r.idleRssMiB ?? 0)) * 2 ** 20;
    const peak = Math.max(...runs.map((r) => r.rssPeakMiB));
    const met = peak * 2 ** 20 <= TARGET_BYTES;
    const result = {
      idleRssMiB: mib(idle),
      runs,
      peakRssMiB: peak,
      target: { rssBytes: TARGET_BYTES },
      met,
    };
    const file = writeResult('memory', result);
    writeReadmeRow({
      name: 'memory',
      work: `${FILE_GIB} GiB file disk -> disk and -> Azurite, ${ROWS / 1e6} M-row table -> CSV (${PARTITIONS} ranges), 1 node; each also at 1/16 size`,
      peer: 'none',
      Ferry: `idle node up to ${mib(idle)} MiB; peak ${runs.map((r) => `${r.workload} ${r.size} ${r.rssPeakMiB} MiB`).join(', ')}`,
      target: 'node RSS <= 256 MB, independent of data size',
      verdict: met ? 'met' : `not met: peak ${peak} MiB (${Math.round((peak * 2 ** 20) / 1e6)} MB)`,
    });
    process.stdout.write(`${JSON.stringify(result, null, 2)}\nwritten to ${file}\n`);
  } finally {
    await ctx.close();
  }
}

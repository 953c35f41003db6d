/**
 * pg-to-parquet: a 5 M-row PostgreSQL table to Parquet files, Ferry against the two steps a user
 * would take (BENCHMARKS.md): `psql \copy (SELECT ...) to FILE csv header`, then converting that CSV
 * with DuckDB, the Parquet library Ferry's encoder runs (bench/parquet-convert.ts, same column types).
 *
 * Ferry: id ranges (BENCH_PARTITIONS, default 4) on one node, filesystem sink `format: parquet`. Its
 * node's peak RSS is reported alone and with its converter processes (one DuckDB process per file).
 * The peer is tuned first: DuckDB threads 1 or 2, insertion order kept or not.
 *
 * Verified after every run with DuckDB: the Parquet schema equals the first output's, the row count
 * and id sum equal the table's, and an order-independent hash of every row equals the first output's.
 *
 * Env: BENCH_ROWS (5,000,000), BENCH_PARTITIONS, BENCH_RUNS, BENCH_WARMUPS, BENCH_TUNE=0 with
 * BENCH_DUCKDB="THREADS PRESERVE_ORDER" (e.g. "2 false").
 */
import { mkdirSync, readdirSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { alternate, maxRss, mib, speedRatio, type Contender, type Sample } from './alternate.ts';
import { startFerry } from './ferry-cluster.ts';
import { BenchContext, writeResult } from './lib.ts';
import { digestParquet, type ParquetDigest } from './parquet-convert.ts';
import { createPgTable, PG, psqlCommand, selectAll, type PgBenchTable } from './pg-table.ts';
import { writeReadmeRow } from './readme-table.ts';
import { requireTools, runCommand } from './tools.ts';
import { NODE, ROOT, tempDir } from '../test/helpers/cluster.ts';

const ROWS = Number(process.env['BENCH_ROWS'] ?? 5_000_000);
const PARTITIONS = Number(process.env['BENCH_PARTITIONS'] ?? 4);
const DUCKDB_GRID: [number, boolean][] = [
  [2, true],
  [2, false],
  [1, true],
  [1, false],
];

class ParquetChecker {
  #reference: ParquetDigest | undefined;
  readonly #table: PgBenchTable;
  constructor(table: PgBenchTable) {
    this.#table = table;
  }
  async check(who: string, files: readonly string[]): Promise<ParquetDigest> {
    const d = await digestParquet(files);
    if (d.rows !== this.#table.rows || d.idSum !== String(this.#table.idSum))
      throw new Error(
        `${who}: wrong output: ${d.rows} rows, id sum ${d.idSum}; the table has ${this.#table.rows}, ${this.#table.idSum}`,
      );
    const ref = this.#reference;
    if (ref && d.schema !== ref.schema)
      throw new Error(`${who}: wrong output: schema ${d.schema} differs from ${ref.schema}`);
    if (ref && d.hash !== ref.hash) throw new Error(`${who}: wrong output: row hash differs`);
    this.#reference ??= d;
    return d;
  }
}

export async function run(): Promise<void> {
  requireTools(['psql']);
  const ctx = new BenchContext();
  try {
    const root = tempDir(ctx, 'ferry-bench-pg-parquet-');
    const outRoot = join(root, 'out');
    mkdirSync(outRoot);
    const table = await createPgTable(ctx, ROWS);
    const ferry = await startFerry(ctx, { gateways: { one: 1 }, allowPaths: [root] });
    await ferry.linkedService('pg', 'postgres', 'one', { ...PG, password: '' });
    await ferry.linkedService('out', 'filesystem', 'one', { root: outRoot });
    const checker = new ParquetChecker(table);

    const ferryContender: Contender = {
      name: 'ferry',
      async run(round: number): Promise<Sample> {
        const path = `ferry-${round}`;
        const r = await ferry.run('one', {
          name: 'pg-parquet',
          activities: [
            {
              name: 'orders',
              source: {
                linkedService: 'pg',
                table: `${table.schema}.orders`,
                partitionColumn: 'id',
                partitions: PARTITIONS,
              },
              sink: { linkedService: 'out', path, format: 'parquet' },
            },
          ],
        });
        const dir = join(outRoot, path);
        const files = readdirSync(dir)
          .filter((f) => f.endsWith('.parquet'))
          .map((f) => join(dir, f));
        await checker.check(`ferry round ${round}`, files);
        rmSync(dir, { recursive: true, force: true });
        return {
          ms: r.ms,
          rssPeakBytes: r.rssPeakBytes,
          rssTreePeakBytes: r.rssTreePeakBytes,
          cpu: r.processes.cpu,
          detail: { files: files.length },
        };
      },
    };

    const twoStep = async ([threads, preserve]: [number, boolean]): Promise<Sample> => {
      const csv = join(root, 'export.csv');
      const parquet = join(root, 'export.parquet');
      const psql = await runCommand(psqlCommand(`\\copy (${selectAll(table)}) to '${csv}' csv header`));
      const duck = await runCommand([
        NODE,
        join(ROOT, 'bench', 'parquet-convert.ts'),
        csv,
        parquet,
        String(threads),
        String(preserve),
      ]);
      await checker.check(`psql + duckdb (threads ${threads})`, [parquet]);
      rmSync(csv, { force: true });
      rmSync(parquet, { force: true });
      return {
        ms: psql.ms + duck.ms,
        cpu: { psql: psql.cpuSeconds ?? NaN, duckdb: duck.cpuSeconds ?? NaN },
        detail: { psqlMs: Math.round(psql.ms), duckdbMs: Math.round(duck.ms) },
      };
    };

    const env = process.env['BENCH_DUCKDB']?.split(' ');
    let best: [number, boolean] = env ? [Number(env[0]), env[1] === 'true'] : DUCKDB_GRID[0]!;
    const tried: { threads: number; preserveInsertionOrder: boolean; ms: number }[] = [];
    if (process.env['BENCH_TUNE'] !== '0') {
      await twoStep(DUCKDB_GRID[0]!); // warm-up
      for (const setting of DUCKDB_GRID) {
        const s = await twoStep(setting);
        process.stderr.write(
          `pg-to-parquet tuning: duckdb threads ${setting[0]}, preserve_insertion_order ${setting[1]}: ${(s.ms / 1000).toFixed(2)} s\n`,
        );
        tried.push({ threads: setting[0], preserveInsertionOrder: setting[1], ms: Math.round(s.ms) });
      }
      const fastest = tried.reduce((a, b) => (b.ms < a.ms ? b : a));
      best = [fastest.threads, fastest.preserveInsertionOrder];
    }
    const label = `threads ${best[0]}, preserve_insertion_order ${best[1]}`;
    process.stderr.write(`pg-to-parquet: duckdb ${label}\n`);
    const c = await alternate('pg-to-parquet', [
      ferryContender,
      { name: 'two-step', run: () => twoStep(best) },
    ]);
    const ratio = speedRatio(c, 'ferry', 'two-step');
    const tree = Math.max(0, ...c.rounds.map((r) => r.samples['ferry']?.rssTreePeakBytes ?? 0));
    const result = {
      rows: ROWS,
      tableBytes: table.bytes,
      partitions: PARTITIONS,
      duckdb: label,
      duckdbTuning: tried,
      times: c.times,
      ratio,
      meaning: 'ratio = two-step time / Ferry time, round by round (higher is better for Ferry)',
      ferryRssPeakMiB: mib(maxRss(c, 'ferry')),
      ferryRssWithConvertersPeakMiB: mib(tree),
      target: { ratio: 1.2 },
      rounds: c.rounds,
    };
    const file = writeResult('pg-to-parquet', result);
    const s = (ms: number): string => `${(ms / 1000).toFixed(1)} s`;
    writeReadmeRow({
      name: 'pg-to-parquet',
      work: `${ROWS / 1e6} M rows PostgreSQL -> Parquet files, ${PARTITIONS} id ranges, 1 node`,
      peer: `psql \\copy to CSV, then DuckDB (${label}): ${s(c.times['two-step']!.median)}`,
      Ferry: `${s(c.times['ferry']!.median)}, ratio ${ratio.median.toFixed(2)} (${ratio.min.toFixed(2)}-${ratio.max.toFixed(2)}); peak node RSS ${mib(maxRss(c, 'ferry'))} MiB, ${mib(tree)} MiB with its converter processes`,
      target: 'Ferry/two-step >= 1.2',
      verdict: ratio.median >= 1.2 ? 'met' : 'not met',
    });
    process.stdout.write(
      `${JSON.stringify(result, (k, v) => (k === 'rounds' ? undefined : v), 2)}\nwritten to ${file}\n`,
    );
  } finally {
    await ctx.close();
  }
}

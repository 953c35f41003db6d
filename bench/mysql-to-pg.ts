/**
 * mysql-to-pg: a 5 M-row MariaDB table into a PostgreSQL table, Ferry against pgloader (BENCHMARKS.md).
 *
 * Both load into the same pre-created PostgreSQL table (same columns, no indexes), emptied before
 * every run: Ferry with sink mode append (partitionColumn id, BENCH_PARTITIONS ranges, one node),
 * pgloader with `data only` into the existing table. pgloader is tuned first: one run per flag set
 * (workers, concurrency, batch rows, prefetch rows, multiple readers per thread / rows per range),
 * and the fastest is its flag set in the alternation.
 *
 * Verified after every run, in PostgreSQL: row count and id sum equal the MariaDB table's, and an
 * order-independent hash of every row's text equals the first run's, so both tools must have loaded
 * exactly the same values.
 *
 * Env: BENCH_ROWS (5,000,000), BENCH_PARTITIONS (4), BENCH_RUNS, BENCH_WARMUPS, BENCH_TUNE=0 with
 * BENCH_PGLOADER_WITH (e.g. "workers = 8, concurrency = 2").
 */
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import mysql from 'mysql2/promise';
import type pg from 'pg';
import { alternate, maxRss, mib, speedRatio, type Contender, type Sample } from './alternate.ts';
import { startFerry } from './ferry-cluster.ts';
import { BenchContext, writeResult } from './lib.ts';
import { PG, pgSchema } from './pg-table.ts';
import { writeReadmeRow } from './readme-table.ts';
import { requireTools, runCommand } from './tools.ts';
import { tempDir } from '../test/helpers/cluster.ts';

const ROWS = Number(process.env['BENCH_ROWS'] ?? 5_000_000);
const PARTITIONS = Number(process.env['BENCH_PARTITIONS'] ?? 4);
const MY = { host: '127.0.0.1', port: 3306, user: 'root' };

const PGLOADER_GRID = [
  'workers = 4, concurrency = 1',
  'workers = 4, concurrency = 2',
  'workers = 8, concurrency = 4',
  'workers = 4, concurrency = 1, batch rows = 50000, prefetch rows = 200000',
  'workers = 4, concurrency = 2, multiple readers per thread, rows per range = 500000',
  'workers = 8, concurrency = 2, multiple readers per thread, rows per range = 250000, batch rows = 50000',
];

interface RowDigest {
  n: number;
  ids: string;
  hash: string;
}

async function makeMariaTable(ctx: BenchContext): Promise<{ db: string; bytes: number }> {
  const db = `ferry_bench_m2p_${process.pid}_${Math.random().toString(36).slice(2, 8)}`;
  const my = await mysql.createConnection({ ...MY, multipleStatements: true });
  ctx.after(async () => {
    await my.query(`DROP DATABASE IF EXISTS ${db}`);
    await my.end();
  });
  const started = Date.now();
  process.stderr.write(`making ${ROWS.toLocaleString('en')} rows in MariaDB ${db}.orders...\n`);
  await my.query(`CREATE DATABASE ${db}; USE ${db};
    CREATE TABLE orders (id bigint PRIMARY KEY, qty int, amount decimal(12,2), note varchar(64),
                         placed datetime(3), due date)`);
  const slice = 1_000_000;
  for (let lo = 1; lo <= ROWS; lo += slice) {
    const hi = Math.min(ROWS, lo + slice - 1);
    // seq_1_to_N is MariaDB's SEQUENCE engine: the rows are generated in the server.
    await my.query(`INSERT INTO orders
      SELECT seq, CAST((seq * 7919) % 100000 AS SIGNED) - 50000, ((seq * 104729) % 100000000) / 100,
             CASE WHEN seq % 101 = 0 THEN NULL
                  WHEN seq % 53 = 0 THEN CONCAT('say "hi", ', SUBSTR(MD5(seq), 1, 30))
                  ELSE CONCAT('customer ', MD5(seq)) END,
             DATE_ADD('2020-01-01', INTERVAL seq * 7123000 MICROSECOND),
             DATE_ADD('2015-01-01', INTERVAL seq % 4000 DAY)
        FROM seq_${lo}_to_${hi}`);
  }
  await my.query('ANALYZE TABLE orders');
  const [rows] = (await my.query(
    `SELECT COUNT(*) AS n, SUM(id) AS ids, data_length AS bytes FROM orders,
       information_schema.tables t WHERE t.table_schema = DATABASE() AND t.table_name = 'orders'`,
  )) as unknown as [{ n: number; ids: string; bytes: number }[]];
  const r = rows[0]!;
  if (Number(r.n) !== ROWS) throw new Error(`MariaDB table has ${r.n} rows, expected ${ROWS}`);
  process.stderr.write(
    `made ${db}.orders: ${mib(Number(r.bytes))} MiB in ${((Date.now() - started) / 1000).toFixed(0)} s\n`,
  );
  return { db, bytes: Number(r.bytes) };
}

async function digest(client: pg.Client, table: string): Promise<RowDigest> {
  // md5 of each row's text, 60 bits of it summed: the same rows in any order give the same sum.
  const { rows } = await client.query<RowDigest>(
    `SELECT count(*)::int AS n, coalesce(sum(id), 0)::text AS ids,
            coalesce(sum(('x' || substr(md5(t::text), 1, 15))::bit(60)::bigint::numeric), 0)::text AS hash
       FROM ${table} t`,
  );
  return rows[0]!;
}

export async function run(): Promise<void> {
  requireTools(['pgloader']);
  const ctx = new BenchContext();
  try {
    const root = tempDir(ctx, 'ferry-bench-m2p-');
    const maria = await makeMariaTable(ctx);
    const { schema, client } = await pgSchema(ctx, 'ferry_bench_m2p');
    const table = `"${schema}".orders`;
    await client.query(`CREATE TABLE ${table} (id bigint, qty int, amount numeric(12,2), note text,
                                                placed timestamp(3), due date)`);
    const expectIds = ((ROWS * (ROWS + 1)) / 2).toString();
    let reference: RowDigest | undefined;
    const verify = async (who: string): Promise<RowDigest> => {
      const d = await digest(client, table);
      if (d.n !== ROWS || d.ids !== expectIds)
        throw new Error(
          `${who}: wrong output: ${d.n} rows, id sum ${d.ids}; MariaDB has ${ROWS}, ${expectIds}`,
        );
      if (reference && d.hash !== reference.hash)
        throw new Error(`${who}: wrong output: row hash ${d.hash} differs from ${reference.hash}`);
      reference ??= d;
      return d;
    };
    const empty = async (): Promise<void> => {
      await client.query(`TRUNCATE ${table}`);
      await client.query(`VACUUM ${table}`);
    };

    const ferry = await startFerry(ctx, { gateways: { one: 1 }, allowPaths: [root] });
    await ferry.linkedService('maria', 'mysql', 'one', { ...MY, database: maria.db, password: '' });
    await ferry.linkedService('pg', 'postgres', 'one', { ...PG, password: '' });
    const ferryContender: Contender = {
      name: 'ferry',
      async run(): Promise<Sample> {
        await empty();
        const r = await ferry.run('one', {
          name: 'm2p',
          activities: [
            {
              name: 'orders',
              source: {
                linkedService: 'maria',
                table: 'orders',
                partitionColumn: 'id',
                partitions: PARTITIONS,
              },
              sink: { linkedService: 'pg', table: `${schema}.orders`, mode: 'append' },
            },
          ],
        });
        const d = await verify('ferry');
        return { ms: r.ms, rssPeakBytes: r.rssPeakBytes, cpu: r.processes.cpu, detail: { rows: d.n } };
      },
    };

    const pgloaderOnce = async (withOptions: string, label: string): Promise<Sample> => {
      await empty();
      const file = join(root, 'load.pgl');
      writeFileSync(
        file,
        `LOAD DATABASE
  FROM mysql://${MY.user}@${MY.host}:${MY.port}/${maria.db}
  INTO postgresql://${PG.user}@${PG.host}:${PG.port}/${PG.database}
  WITH data only, ${withOptions}
  INCLUDING ONLY TABLE NAMES MATCHING 'orders'
  ALTER SCHEMA '${maria.db}' RENAME TO '${schema}';
`,
      );
      const r = await runCommand(['pgloader', '--root-dir', join(root, 'pgloader'), file]);
      // pgloader reports row errors in its summary and still exits 0; the check below catches them.
      const d = await verify(`pgloader (${label})`);
      return { ms: r.ms, cpu: { pgloader: r.cpuSeconds ?? NaN }, detail: { rows: d.n } };
    };

    let best = process.env['BENCH_PGLOADER_WITH'] ?? PGLOADER_GRID[0]!;
    const tried: { with: string; ms: number }[] = [];
    if (process.env['BENCH_TUNE'] !== '0') {
      await pgloaderOnce(PGLOADER_GRID[0]!, 'warm-up');
      for (const w of PGLOADER_GRID) {
        const s = await pgloaderOnce(w, w);
        process.stderr.write(`mysql-to-pg tuning: pgloader WITH ${w}: ${(s.ms / 1000).toFixed(2)} s\n`);
        tried.push({ with: w, ms: Math.round(s.ms) });
      }
      best = tried.reduce((a, b) => (b.ms < a.ms ? b : a)).with;
    }
    process.stderr.write(`mysql-to-pg: pgloader WITH ${best}\n`);
    const c = await alternate('mysql-to-pg', [
      ferryContender,
      { name: 'pgloader', run: () => pgloaderOnce(best, 'tuned') },
    ]);
    const ratio = speedRatio(c, 'ferry', 'pgloader');
    const result = {
      rows: ROWS,
      sourceBytes: maria.bytes,
      partitions: PARTITIONS,
      pgloaderWith: best,
      pgloaderTuning: tried,
      times: c.times,
      ratio,
      meaning: 'ratio = pgloader time / Ferry time, round by round (higher is better for Ferry)',
      ferryRssPeakMiB: mib(maxRss(c, 'ferry')),
      target: { ratio: 1.2 },
      rounds: c.rounds,
    };
    const file = writeResult('mysql-to-pg', result);
    const s = (ms: number): string => `${(ms / 1000).toFixed(1)} s`;
    writeReadmeRow({
      name: 'mysql-to-pg',
      work: `${ROWS / 1e6} M rows MariaDB -> existing PostgreSQL table (append), ${PARTITIONS} id ranges, 1 node`,
      peer: `pgloader 3.6 \`data only, ${best}\`: ${s(c.times['pgloader']!.median)}`,
      Ferry: `${s(c.times['ferry']!.median)}, ratio ${ratio.median.toFixed(2)} (${ratio.min.toFixed(2)}-${ratio.max.toFixed(2)}); peak node RSS ${mib(maxRss(c, 'ferry'))} MiB`,
      target: 'Ferry/pgloader >= 1.2',
      verdict: ratio.median >= 1.2 ? 'met' : 'not met',
    });
    process.stdout.write(
      `${JSON.stringify(result, (k, v) => (k === 'rounds' ? undefined : v), 2)}\nwritten to ${file}\n`,
    );
  } finally {
    await ctx.close();
  }
}

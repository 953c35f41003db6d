/**
 * The PostgreSQL source table of the table benchmarks, in a schema of its own (random suffix, dropped
 * when the bench ends): a realistic mix of types, made by generate_series in the server.
 *
 *   id bigint PRIMARY KEY, qty int, amount numeric(12,2), note text (~40 chars; about 1% NULL, 2%
 *   with quotes and a comma), placed timestamptz (milliseconds), due date
 *
 * Rows are inserted in id order and the table is vacuumed and frozen, so the first measured read does
 * not pay for setting hint bits, and a partition's rows are a contiguous stretch of the heap.
 */
import pg from 'pg';
import type { BenchContext } from './lib.ts';

export const PG = { host: '127.0.0.1', port: 5432, user: 'postgres', database: 'test' };

/** psql, the peer's client, run against the benchmark database with one command (`-c`). */
export function psqlCommand(command: string): string[] {
  return [
    'psql',
    '-X',
    '-q',
    '-v',
    'ON_ERROR_STOP=1',
    '-h',
    PG.host,
    '-p',
    String(PG.port),
    '-U',
    PG.user,
    '-d',
    PG.database,
    '-c',
    command,
  ];
}

export const PG_COLUMNS = ['id', 'qty', 'amount', 'note', 'placed', 'due'] as const;

export interface PgBenchTable {
  schema: string;
  /** `schema.orders`, quoted. */
  table: string;
  rows: number;
  /** Sum of ids: rows * (rows + 1) / 2. */
  idSum: number;
  /** Size of the table's heap in bytes. */
  bytes: number;
  client: pg.Client;
}

export async function pgSchema(
  ctx: BenchContext,
  prefix: string,
): Promise<{ schema: string; client: pg.Client }> {
  const schema = `${prefix}_${process.pid}_${Math.random().toString(36).slice(2, 8)}`;
  const client = new pg.Client(PG);
  await client.connect();
  ctx.after(async () => {
    // A run killed mid-load may hold locks that would make DROP SCHEMA wait.
    await client.query(
      `SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE pid <> pg_backend_pid() AND position($1 in query) > 0`,
      [schema],
    );
    await client.query(`DROP SCHEMA IF EXISTS "${schema}" CASCADE`);
    await client.end();
  });
  await client.query(`CREATE SCHEMA "${schema}"`);
  return { schema, client };
}

export async function createPgTable(
  ctx: BenchContext,
  rows: number,
  prefix = 'ferry_bench',
): Promise<PgBenchTable> {
  const { schema, client } = await pgSchema(ctx, prefix);
  const table = `"${schema}".orders`;
  const started = Date.now();
  process.stderr.write(`making ${rows.toLocaleString('en')} rows in ${table}...\n`);
  await client.query(`CREATE TABLE ${table} (
      id bigint NOT NULL, qty int, amount numeric(12,2), note text, placed timestamptz, due date)`);
  // In slices, so no single statement holds a huge transaction; each slice is one generate_series.
  const slice = 1_000_000;
  for (let lo = 1; lo <= rows; lo += slice) {
    const hi = Math.min(rows, lo + slice - 1);
    await client.query(`INSERT INTO ${table}
      SELECT g,
             ((g * 7919) % 100000 - 50000)::int,
             (((g * 104729) % 100000000) / 100.0)::numeric(12,2),
             CASE WHEN g % 101 = 0 THEN NULL
                  WHEN g % 53 = 0 THEN 'say "hi", ' || substr(md5(g::text), 1, 30)
                  ELSE 'customer ' || md5(g::text) END,
             timestamptz '2020-01-01 00:00:00+00' + g * interval '7.123 seconds',
             date '2015-01-01' + (g % 4000)::int
        FROM generate_series(${lo}::bigint, ${hi}::bigint) g`);
  }
  await client.query(`ALTER TABLE ${table} ADD PRIMARY KEY (id)`);
  await client.query(`VACUUM (FREEZE, ANALYZE) ${table}`);
  const { rows: r } = await client.query<{ n: string; s: string; bytes: string }>(
    `SELECT count(*)::text AS n, sum(id)::text AS s, pg_relation_size('${table.replace(/'/g, "''")}')::text AS bytes FROM ${table}`,
  );
  const got = r[0]!;
  const idSum = (rows * (rows + 1)) / 2;
  if (Number(got.n) !== rows || Number(got.s) !== idSum)
    throw new Error(`table has ${got.n} rows, id sum ${got.s}; expected ${rows}, ${idSum}`);
  process.stderr.write(
    `made ${table}: ${Math.round(Number(got.bytes) / 2 ** 20)} MiB in ${((Date.now() - started) / 1000).toFixed(0)} s\n`,
  );
  return { schema, table, rows, idSum, bytes: Number(got.bytes), client };
}

/** The SELECT both Ferry and the peers read, so they render the same columns the same way. */
export function selectAll(t: PgBenchTable): string {
  return `SELECT ${PG_COLUMNS.join(', ')} FROM ${t.table}`;
}

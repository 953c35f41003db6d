/**
 * Tables into tables, end to end on real gateways: MariaDB into PostgreSQL split over several nodes,
 * a PostgreSQL overwrite that only swaps once every task is in (the finalize task), incremental
 * copies that remember their watermark between runs, and a worker killed mid-load that leaves
 * exactly one copy of every row.
 */
import { test, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import mysql from 'mysql2/promise';
import pg from 'pg';
import { eventually } from './helpers/cluster.ts';
import { gatewayWithNodes, runPipeline, waitRun, type Gateway } from './helpers/scenario.ts';

const PG = { host: '127.0.0.1', port: 5432, user: 'postgres', database: 'test' };
const MY = { host: '127.0.0.1', port: 3306, user: 'root' };

/** A schema of its own in the test database, dropped afterwards; returns a connected client. */
async function pgSchema(t: TestContext, prefix: string): Promise<{ db: pg.Client; schema: string }> {
  const schema = `${prefix}_${process.pid}_${Date.now()}`;
  const db = new pg.Client(PG);
  await db.connect();
  t.after(async () => {
    // A failed test may leave a load open, whose locks would make DROP SCHEMA wait.
    await db.query(
      `SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE pid <> pg_backend_pid() AND position($1 in query) > 0`,
      [schema],
    );
    await db.query(`DROP SCHEMA IF EXISTS "${schema}" CASCADE`);
    await db.end();
  });
  await db.query(`CREATE SCHEMA "${schema}"`);
  return { db, schema };
}

async function pgLinkedService(g: Gateway, name: string): Promise<void> {
  await g.svc.api.call('POST', '/api/v1/linked-services', {
    name,
    type: 'postgres',
    gateway: g.gateway,
    properties: { ...PG, password: '' },
  });
}

/** An order-independent fingerprint of a table's rows, as PostgreSQL renders them. */
async function pgDigest(db: pg.Client, table: string, key: string): Promise<{ n: number; md5: string }> {
  const { rows } = await db.query<{ n: number; md5: string }>(
    `SELECT count(*)::int AS n, coalesce(md5(string_agg(t::text, '|' ORDER BY t."${key}")), '') AS md5 FROM ${table} t`,
  );
  return rows[0]!;
}

test('MariaDB into PostgreSQL: created from the source columns, split over nodes, every row once', async (t) => {
  const ROWS = 30_000;
  const { db, schema } = await pgSchema(t, 'ferry_m2p');
  const myDb = `ferry_m2p_${process.pid}_${Date.now()}`;
  const my = await mysql.createConnection({ ...MY, database: 'test', multipleStatements: true });
  t.after(async () => {
    await my.query(`DROP DATABASE IF EXISTS ${myDb}`);
    await my.end();
  });
  await my.query(`SET SESSION max_recursive_iterations = 1000000; CREATE DATABASE ${myDb}; USE ${myDb};
    CREATE TABLE orders (id bigint PRIMARY KEY, customer varchar(40) NOT NULL, amount decimal(14,2),
                         note text, placed datetime(6), flag tinyint);
    INSERT INTO orders
    WITH RECURSIVE s(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM s WHERE i < ${ROWS})
    SELECT i, CONCAT('cüstomer ', i % 97), i * 1.25 - 1000,
           CASE WHEN i % 7 = 0 THEN NULL WHEN i % 11 = 0 THEN '' ELSE CONCAT('say "hi"', CHAR(10), i) END,
           TIMESTAMP('2024-01-01') + INTERVAL i SECOND + INTERVAL 123456 MICROSECOND, i % 3
      FROM s;`);

  const g = await gatewayWithNodes(t, 3);
  await g.svc.api.call('POST', '/api/v1/linked-services', {
    name: 'maria',
    type: 'mysql',
    gateway: g.gateway,
    properties: { ...MY, database: myDb, password: '' },
  });
  await pgLinkedService(g, 'pg');
  const runId = await runPipeline(g, {
    name: 'm2p',
    activities: [
      {
        name: 'orders',
        source: { linkedService: 'maria', table: 'orders', partitionColumn: 'id', partitions: 6 },
        sink: { linkedService: 'pg', table: `${schema}.orders`, mode: 'create' },
      },
    ],
  });
  const run = await waitRun(g, runId, 120_000);
  assert.equal(run.status, 'succeeded', JSON.stringify(run.error));
  const copies = run.tasks.filter((tk: any) => tk.kind === 'copy');
  assert.equal(copies.length, 6);
  assert.ok(new Set(copies.map((tk: any) => tk.node)).size >= 2, 'partitions ran on several nodes');
  assert.equal(run.progress.rows, ROWS);

  const { rows } = await db.query(
    `SELECT count(*)::int AS n, count(DISTINCT id)::int AS ids, sum(amount)::text AS total,
            count(*) FILTER (WHERE note IS NULL)::int AS nulls, count(*) FILTER (WHERE note = '')::int AS empties,
            min(placed)::text AS first
       FROM "${schema}".orders`,
  );
  const [mine] = (await my.query(
    `SELECT COUNT(*) AS n, SUM(amount) AS total, SUM(note IS NULL) AS nulls, SUM(note = '') AS empties FROM orders`,
  )) as unknown as [{ n: number; total: string; nulls: string; empties: string }[]];
  assert.deepEqual(rows[0], {
    n: ROWS,
    ids: ROWS,
    total: mine[0]!.total,
    nulls: Number(mine[0]!.nulls),
    empties: Number(mine[0]!.empties),
    first: '2024-01-01 00:00:01.123456',
  });
  const sample = await db.query(`SELECT customer, note FROM "${schema}".orders WHERE id = 2`);
  assert.deepEqual(sample.rows[0], { customer: 'cüstomer 2', note: 'say "hi"\n2' });
});

test('a PostgreSQL overwrite keeps the old rows until every task is in, then swaps in one finalize', async (t) => {
  const { db, schema } = await pgSchema(t, 'ferry_ovw');
  await db.query(`
    CREATE TABLE "${schema}".src (k int PRIMARY KEY, v text);
    INSERT INTO "${schema}".src SELECT g, 'new ' || g FROM generate_series(1, 5000) g;
    CREATE TABLE "${schema}".dst (k int PRIMARY KEY, v text);
    INSERT INTO "${schema}".dst SELECT g, 'old ' || g FROM generate_series(1, 100) g;`);
  const g = await gatewayWithNodes(t, 2);
  await pgLinkedService(g, 'pg');
  const runId = await runPipeline(g, {
    name: 'ovw',
    activities: [
      {
        name: 'swap',
        source: { linkedService: 'pg', table: `${schema}.src`, partitionColumn: 'k', partitions: 4 },
        sink: { linkedService: 'pg', table: `${schema}.dst`, mode: 'overwrite' },
        // Slow enough to look at the target while the copies run.
        maxBytesPerSecond: 8 * 1024,
      },
    ],
  });
  await eventually('a copy to have loaded rows', async () => {
    const r = await g.svc.api.call('GET', `/api/v1/runs/${runId}`);
    return r.tasks.some((tk: any) => tk.kind === 'copy' && tk.attemptList.at(-1)?.bytes > 0);
  });
  assert.deepEqual(await pgDigest(db, `"${schema}".dst`, 'k'), await oldDigest());
  const run = await waitRun(g, runId, 120_000);
  assert.equal(run.status, 'succeeded', JSON.stringify(run.error));
  const finalize = run.tasks.filter((tk: any) => tk.kind === 'finalize');
  assert.equal(finalize.length, 1, 'one finalize task, after the copies');
  assert.equal(finalize[0].status, 'succeeded');
  assert.deepEqual(await pgDigest(db, `"${schema}".dst`, 'k'), await pgDigest(db, `"${schema}".src`, 'k'));
  const leftovers = await db.query(
    `SELECT tablename FROM pg_tables WHERE schemaname = $1 AND tablename LIKE 'dst\\_\\_ferry\\_%'`,
    [schema],
  );
  assert.deepEqual(leftovers.rows, [], 'the staging table is gone');

  async function oldDigest(): Promise<{ n: number; md5: string }> {
    const { rows } = await db.query<{ n: number; md5: string }>(
      `SELECT count(*)::int AS n, md5(string_agg(t::text, '|' ORDER BY t.k)) AS md5
         FROM (SELECT g AS k, 'old ' || g AS v FROM generate_series(1, 100) g) t`,
    );
    return rows[0]!;
  }
});

test('incremental copy: each run copies only rows above the remembered watermark', async (t) => {
  const { db, schema } = await pgSchema(t, 'ferry_inc');
  await db.query(`
    CREATE TABLE "${schema}".events (id bigint PRIMARY KEY, at timestamptz NOT NULL, what text);
    INSERT INTO "${schema}".events
    SELECT g, timestamptz '2025-01-01 00:00:00+00' + g * interval '1 minute', 'e' || g FROM generate_series(1, 1000) g;
    CREATE TABLE "${schema}".copy (id bigint PRIMARY KEY, at timestamptz NOT NULL, what text);`);
  const g = await gatewayWithNodes(t, 2);
  await pgLinkedService(g, 'pg');
  const spec = {
    name: 'inc',
    activities: [
      {
        name: 'events',
        source: {
          linkedService: 'pg',
          table: `${schema}.events`,
          watermarkColumn: 'at',
          partitionColumn: 'id',
          partitions: 3,
        },
        sink: { linkedService: 'pg', table: `${schema}.copy` },
      },
    ],
  };
  const copied = async (): Promise<number> => {
    const run = await waitRun(g, await runPipeline(g, spec), 60_000);
    assert.equal(run.status, 'succeeded', JSON.stringify(run.error));
    return run.progress.rows as number;
  };
  assert.equal(await copied(), 1000, 'the first run copies everything');
  await db.query(`INSERT INTO "${schema}".events
    SELECT g, timestamptz '2025-01-01 00:00:00+00' + g * interval '1 minute', 'e' || g FROM generate_series(1001, 1250) g`);
  assert.equal(await copied(), 250, 'the second only the new rows');
  assert.equal(await copied(), 0, 'the third nothing');
  assert.deepEqual(
    await pgDigest(db, `"${schema}".copy`, 'id'),
    await pgDigest(db, `"${schema}".events`, 'id'),
  );
});

test('kill -9 of a worker mid-load into PostgreSQL: its transaction vanishes, the retry loads every row once', async (t) => {
  const ROWS = 200_000;
  const { db, schema } = await pgSchema(t, 'ferry_kill');
  await db.query(`
    CREATE TABLE "${schema}".src (k int PRIMARY KEY, pad text);
    INSERT INTO "${schema}".src SELECT g, repeat(md5(g::text), 3) FROM generate_series(1, ${ROWS}) g;
    CREATE TABLE "${schema}".dst (k int PRIMARY KEY, pad text);`);
  const g = await gatewayWithNodes(t, 3);
  await pgLinkedService(g, 'pg');
  const runId = await runPipeline(g, {
    name: 'kill',
    activities: [
      {
        name: 'load',
        source: { linkedService: 'pg', table: `${schema}.src` },
        sink: { linkedService: 'pg', table: `${schema}.dst` },
        maxBytesPerSecond: 4 * 1024 * 1024,
      },
    ],
  });
  const running = await eventually(
    'the load to be a quarter done',
    async () => {
      const r = await g.svc.api.call('GET', `/api/v1/runs/${runId}`);
      const attempt = r.tasks.find((tk: any) => tk.kind === 'copy')?.attemptList.at(-1);
      return attempt?.status === 'running' && attempt.bytes > 5 * 1024 * 1024 ? attempt : undefined;
    },
    60_000,
  );
  const victim = g.nodes.find((n) => n.name === running.node);
  assert.ok(victim);
  const { rows: before } = await db.query(`SELECT count(*)::int AS n FROM "${schema}".dst`);
  assert.equal(before[0].n, 0, 'nothing is visible before commit');
  victim.proc.kill('SIGKILL');
  const run = await waitRun(g, runId, 120_000);
  assert.equal(run.status, 'succeeded', JSON.stringify(run.error));
  const copy = run.tasks.find((tk: any) => tk.kind === 'copy');
  assert.ok(copy.attemptList.length >= 2, 'the task ran again');
  assert.equal(copy.attemptList[0].status, 'lost');
  assert.deepEqual(await pgDigest(db, `"${schema}".dst`, 'k'), await pgDigest(db, `"${schema}".src`, 'k'));
});

test('PostgreSQL into MariaDB: LOAD DATA per task, overwrite swapped in by the finalize task', async (t) => {
  const ROWS = 20_000;
  const { db, schema } = await pgSchema(t, 'ferry_p2m');
  await db.query(`
    CREATE TABLE "${schema}".orders (id bigint PRIMARY KEY, customer text, amount numeric(14,2), at timestamptz, bin bytea);
    INSERT INTO "${schema}".orders
    SELECT g, CASE WHEN g % 9 = 0 THEN NULL WHEN g % 10 = 0 THEN '' ELSE 'naïve ' || g END, g * 1.25,
           timestamptz '2024-03-01 12:00:00+00' + g * interval '1 second', decode(lpad(to_hex(g), 8, '0'), 'hex')
      FROM generate_series(1, ${ROWS}) g;`);
  const myDb = `ferry_p2m_${process.pid}_${Date.now()}`;
  const my = await mysql.createConnection({ ...MY, database: 'test', multipleStatements: true });
  t.after(async () => {
    await my.query(`DROP DATABASE IF EXISTS ${myDb}`);
    await my.end();
  });
  await my.query(`CREATE DATABASE ${myDb}; USE ${myDb};
    CREATE TABLE orders (id bigint PRIMARY KEY, customer text, amount decimal(14,2), at datetime(6), bin varbinary(8));
    INSERT INTO orders VALUES (-1, 'old', 0, NULL, NULL);`);
  const g = await gatewayWithNodes(t, 2);
  await pgLinkedService(g, 'pg');
  await g.svc.api.call('POST', '/api/v1/linked-services', {
    name: 'maria',
    type: 'mysql',
    gateway: g.gateway,
    properties: { ...MY, database: myDb, password: '' },
  });
  const runId = await runPipeline(g, {
    name: 'p2m',
    activities: [
      {
        name: 'orders',
        source: { linkedService: 'pg', table: `${schema}.orders`, partitionColumn: 'id', partitions: 4 },
        sink: { linkedService: 'maria', table: 'orders', mode: 'overwrite' },
      },
    ],
  });
  const run = await waitRun(g, runId, 120_000);
  assert.equal(run.status, 'succeeded', JSON.stringify(run.error));
  assert.equal(run.tasks.filter((tk: any) => tk.kind === 'finalize').length, 1);
  assert.equal(run.progress.rows, ROWS);
  const [rows] = (await my.query(
    `SELECT COUNT(*) AS n, MIN(id) AS lo, SUM(amount) AS total, SUM(customer IS NULL) AS nulls,
            SUM(customer = '') AS empties, MAX(at) AS last, HEX(MAX(bin)) AS bin,
            (SELECT customer FROM orders WHERE id = 7) AS seven
       FROM orders`,
  )) as unknown as [Record<string, unknown>[]];
  const { rows: expected } = await db.query(`SELECT sum(amount)::text AS total FROM "${schema}".orders`);
  assert.deepEqual(
    { ...rows[0], last: String(rows[0]!['last']) },
    {
      n: ROWS,
      lo: 1,
      total: expected[0].total,
      nulls: String(Math.floor(ROWS / 9)),
      empties: String(Math.floor(ROWS / 10) - Math.floor(ROWS / 90)),
      last: String(new Date(Date.UTC(2024, 2, 1, 12, 0, 0) + ROWS * 1000)),
      bin: ROWS.toString(16).padStart(8, '0').toUpperCase(),
      seven: 'naïve 7',
    },
  );
});

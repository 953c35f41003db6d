import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { Client } from 'pg';
import type { ResolvedEndpointT } from '../../protocol/task.ts';
import type { TableColumn } from '../../tables/table-columns.ts';
import { postgresSink } from './postgres-connector.ts';
import {
  SERVER,
  activityCtx,
  attempt,
  createTestSchema,
  csvStream,
  endpoint,
  eventually,
  type TestSchema,
} from './postgres-test-kit.ts';

let db: TestSchema;
let admin: Client;
let schema: string;

const KV: TableColumn[] = [
  { name: 'k', type: 'int32', nullable: false },
  { name: 'v', type: 'text', nullable: true },
];

before(async () => {
  db = await createTestSchema('pgovw');
  ({ admin, schema } = db);
});

after(async () => {
  await db.drop();
});

function sink(table: string): ResolvedEndpointT {
  return endpoint({ table: `${schema}.${table}`, mode: 'overwrite' }, {}, 'pg2');
}

async function query<R>(sql: string, params: unknown[] = []): Promise<R[]> {
  return (await admin.query(sql, params)).rows as R[];
}

async function tablesLike(prefix: string): Promise<string[]> {
  const rows = await query<{ name: string }>(
    `SELECT tablename AS name FROM pg_tables WHERE schemaname = $1 AND starts_with(tablename, $2) ORDER BY 1`,
    [schema, prefix],
  );
  return rows.map((r) => r.name);
}

async function load(endpointT: ResolvedEndpointT, runId: string, index: number, csv: string): Promise<void> {
  const writer = await postgresSink.open(endpointT, attempt(index, { runId }));
  await writer.stage({ name: `part-${index}`, stream: csvStream(csv), columns: KV });
  await writer.commit();
}

describe('postgres sink: overwrite', () => {
  it('loads a staging table, keeps the old rows until the finalize commits, and finalizes once', async () => {
    await admin.query(`
      CREATE TABLE ${schema}.ovw (k int PRIMARY KEY, v text, extra text DEFAULT 'dflt',
                                  twice int GENERATED ALWAYS AS (k * 2) STORED);
      INSERT INTO ${schema}.ovw (k, v) SELECT g, 'old ' || g FROM generate_series(1, 5) g;
      CREATE VIEW ${schema}.ovw_view AS SELECT k, v FROM ${schema}.ovw;
      CREATE TABLE ${schema}.ovw__ferry_deadbeef (k int);   -- left by a failed run
      CREATE TABLE ${schema}.ovw__ferry_archive (k int);    -- somebody's own table`);
    const ctx = activityCtx('run-ovw');
    assert.deepEqual(await postgresSink.prepare!(sink('ovw'), KV, ctx), { finalize: true });
    // Prepared twice (a retried plan): the same staging table, still there.
    assert.deepEqual(await postgresSink.prepare!(sink('ovw'), KV, ctx), { finalize: true });
    const staging = (await tablesLike('ovw__ferry_')).filter((t) => t !== 'ovw__ferry_archive');
    assert.equal(staging.length, 1, 'the stale staging table is gone, the other one kept');
    assert.match(staging[0]!, /^ovw__ferry_[0-9a-f]{8}$/);
    assert.notEqual(staging[0], 'ovw__ferry_deadbeef');
    assert.deepEqual(await tablesLike('ovw__ferry_archive'), ['ovw__ferry_archive']);
    const stagingColumns = await query<{ name: string }>(
      `SELECT attname AS name FROM pg_attribute WHERE attrelid = $1::regclass AND attnum > 0 AND NOT attisdropped`,
      [`${schema}.${staging[0]}`],
    );
    assert.deepEqual(
      stagingColumns.map((c) => c.name),
      ['k', 'v'],
      'only the loaded columns',
    );

    await load(sink('ovw'), 'run-ovw', 0, 'k,v\n10,new 10\n11,\n');
    await load(sink('ovw'), 'run-ovw', 1, 'k,v\n12,new 12\n');
    const old = await query(`SELECT k, v FROM ${schema}.ovw ORDER BY k`);
    assert.equal(old.length, 5, 'the copies leave the target alone');

    // Hold the finalize before its end (its DROP of the staging table waits for our lock): the
    // target's rows are already replaced inside its transaction, and readers still see the old ones.
    const holder = new Client(SERVER);
    await holder.connect();
    await holder.query(`BEGIN; LOCK TABLE ${schema}.${staging[0]} IN ACCESS SHARE MODE`);
    const finalizing = postgresSink.finalize!(sink('ovw'), ctx);
    try {
      await eventually(async () => {
        const [row] = await query<{ n: number }>(
          `SELECT count(*)::int AS n FROM pg_stat_activity
            WHERE wait_event_type = 'Lock' AND query LIKE 'DROP TABLE%' AND position($1 in query) > 0`,
          [schema],
        );
        return row!.n === 1;
      }, 'the finalize to reach its DROP');
      assert.deepEqual(await query(`SELECT k, v FROM ${schema}.ovw ORDER BY k`), old);
    } finally {
      await holder.query('ROLLBACK');
      await holder.end();
    }
    await finalizing;

    const fresh = [
      { k: 10, v: 'new 10', extra: 'dflt', twice: 20 },
      { k: 11, v: null, extra: 'dflt', twice: 22 },
      { k: 12, v: 'new 12', extra: 'dflt', twice: 24 },
    ];
    assert.deepEqual(await query(`SELECT k, v, extra, twice FROM ${schema}.ovw ORDER BY k`), fresh);
    assert.deepEqual(await query(`SELECT k FROM ${schema}.ovw_view ORDER BY k`), [
      { k: 10 },
      { k: 11 },
      { k: 12 },
    ]);
    assert.deepEqual(await tablesLike('ovw__ferry_'), ['ovw__ferry_archive'], 'the staging table is gone');
    assert.deepEqual(
      await query(`SELECT task_index, rows FROM ${schema}.ferry_ledger WHERE run_id = 'run-ovw' ORDER BY 1`),
      [
        { task_index: -1, rows: '3' },
        { task_index: 0, rows: '2' },
        { task_index: 1, rows: '1' },
      ],
    );

    // A finalize that runs again (its first attempt's report was lost) changes nothing.
    await admin.query(`INSERT INTO ${schema}.ovw (k, v) VALUES (99, 'written since')`);
    await postgresSink.finalize!(sink('ovw'), ctx);
    assert.equal((await query(`SELECT k FROM ${schema}.ovw`)).length, 4);
  });

  it('creates a missing target from the source columns, empty until the finalize', async () => {
    const ctx = activityCtx('run-fresh');
    assert.deepEqual(await postgresSink.prepare!(sink('fresh'), KV, ctx), { finalize: true });
    assert.deepEqual(await query(`SELECT * FROM ${schema}.fresh`), []);
    await load(sink('fresh'), 'run-fresh', 0, 'k,v\n1,a\n');
    assert.deepEqual(await query(`SELECT * FROM ${schema}.fresh`), []);
    await postgresSink.finalize!(sink('fresh'), ctx);
    assert.deepEqual(await query(`SELECT k, v FROM ${schema}.fresh`), [{ k: 1, v: 'a' }]);
  });

  it('leaves append and create targets alone at finalize', async () => {
    await admin.query(
      `CREATE TABLE ${schema}.kept (k int, v text); INSERT INTO ${schema}.kept VALUES (1, 'x')`,
    );
    const append = endpoint({ table: `${schema}.kept` }, {}, 'pg2');
    await postgresSink.finalize!(append, activityCtx('run-kept'));
    assert.equal((await query(`SELECT * FROM ${schema}.kept`)).length, 1);
  });
});

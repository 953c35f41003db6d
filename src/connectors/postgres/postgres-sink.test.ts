import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { after, before, beforeEach, describe, it } from 'node:test';
import type { Client } from 'pg';
import type { ResolvedEndpointT } from '../../protocol/task.ts';
import type { AttemptContext, StagedObject } from '../connector.ts';
import type { TableColumn } from '../../tables/table-columns.ts';
import { postgresSink } from './postgres-connector.ts';
import {
  activityCtx,
  attempt,
  createTestSchema,
  csvStream,
  endpoint,
  eventually,
  rejectsWith,
  type TestSchema,
} from './postgres-test-kit.ts';

let db: TestSchema;
let admin: Client;
let schema: string;

const KV: TableColumn[] = [
  { name: 'k', type: 'int32', nullable: false, nativeType: 'integer' },
  { name: 'v', type: 'text', nullable: true, nativeType: 'text' },
];
const CSV = 'k,v\n1,one\n2,""\n3,\n';
const sha256 = (data: string): string => createHash('sha256').update(data).digest('hex');

before(async () => {
  db = await createTestSchema('pgsink');
  ({ admin, schema } = db);
});

after(async () => {
  await db.drop([`ferry_ro_${db.suffix}`]);
});

function sink(
  options: Record<string, unknown> = {},
  properties: Record<string, unknown> = {},
): ResolvedEndpointT {
  return endpoint({ table: `${schema}.dst`, ...options }, properties, 'pg2');
}

async function query<R>(sql: string): Promise<R[]> {
  return (await admin.query(sql)).rows as R[];
}

async function count(table: string): Promise<number> {
  const [row] = await query<{ n: number }>(`SELECT count(*)::int AS n FROM ${schema}.${table}`);
  return row!.n;
}

async function ledger(): Promise<{ task_index: number; rows: string; bytes: string; sha256: string }[]> {
  return query(`SELECT task_index, rows, bytes, sha256 FROM ${schema}.ferry_ledger ORDER BY task_index`);
}

/** One attempt of task `index` that stages `csv` and commits. */
async function load(
  endpointT: ResolvedEndpointT,
  ctx: AttemptContext,
  csv: string,
  columns = KV,
): Promise<StagedObject> {
  const writer = await postgresSink.open(endpointT, ctx);
  try {
    const name = `part-${String(ctx.taskIndex).padStart(5, '0')}`;
    const staged = await writer.stage({ name, stream: csvStream(csv), columns });
    await writer.commit();
    return staged;
  } catch (err) {
    await writer.abort();
    throw err;
  }
}

describe('postgres sink: append', () => {
  beforeEach(async () => {
    await admin.query(`DROP TABLE IF EXISTS ${schema}.dst, ${schema}.ferry_ledger;
      CREATE TABLE ${schema}.dst (k int PRIMARY KEY, v text, extra text DEFAULT 'dflt')`);
  });

  it('loads a task in one transaction with its ledger row, invisible until commit', async () => {
    assert.deepEqual(await postgresSink.prepare!(sink(), KV, activityCtx()), { finalize: false });
    const writer = await postgresSink.open(sink(), attempt(0));
    const staged = await writer.stage({ name: 'part-00000', stream: csvStream(CSV), columns: KV });
    assert.deepEqual(staged, { name: 'part-00000', bytes: CSV.length, sha256: sha256(CSV), rows: 3 });
    assert.equal(await count('dst'), 0, 'no rows before commit');
    assert.deepEqual(await ledger(), [], 'no ledger row before commit');
    await writer.commit();
    await writer.commit(); // a second commit is a no-op
    assert.deepEqual(await query(`SELECT k, v, extra FROM ${schema}.dst ORDER BY k`), [
      { k: 1, v: 'one', extra: 'dflt' },
      { k: 2, v: '', extra: 'dflt' },
      { k: 3, v: null, extra: 'dflt' },
    ]);
    assert.deepEqual(await ledger(), [
      { task_index: 0, rows: '3', bytes: String(CSV.length), sha256: sha256(CSV) },
    ]);
    await rejectsWith(writer.stage({ name: 'x', stream: csvStream(CSV), columns: KV }), 'conflict');
  });

  it('trims ledger rows older than 30 days at prepare, and keeps the newer ones', async () => {
    await postgresSink.prepare!(sink(), KV, activityCtx());
    await admin.query(`INSERT INTO ${schema}.ferry_ledger (run_id, activity, task_index, rows, committed_at)
      VALUES ('old', 'a', 0, 1, now() - interval '31 days'), ('recent', 'a', 0, 1, now() - interval '29 days')`);
    await postgresSink.prepare!(sink(), KV, activityCtx());
    const left = await query<{ run_id: string }>(`SELECT run_id FROM ${schema}.ferry_ledger ORDER BY run_id`);
    assert.deepEqual(
      left.map((r) => r.run_id),
      ['recent'],
    );
  });

  it('abort leaves nothing behind, ledger included, and may run twice', async () => {
    await postgresSink.prepare!(sink(), KV, activityCtx());
    const writer = await postgresSink.open(sink(), attempt(0));
    await writer.stage({ name: 'part-00000', stream: csvStream(CSV), columns: KV });
    await writer.abort();
    await writer.abort();
    await rejectsWith(writer.commit(), 'conflict', /the attempt is aborted \(commit\)/);
    assert.equal(await count('dst'), 0);
    assert.deepEqual(await ledger(), []);
    // The task can still be loaded by another attempt.
    await load(sink(), attempt(0, { attemptId: 'a2' }), CSV);
    assert.equal(await count('dst'), 3);
  });

  it('a later attempt of a committed task drains its stream, loads nothing and reports the commit', async () => {
    await postgresSink.prepare!(sink(), KV, activityCtx());
    const first = await load(sink(), attempt(0), CSV);
    const stream = csvStream(CSV);
    const writer = await postgresSink.open(sink(), attempt(0, { attemptId: 'a2' }));
    const again = await writer.stage({ name: 'part-00000', stream, columns: KV });
    await writer.commit();
    assert.ok(stream.readableEnded, 'the stream was read to its end');
    assert.deepEqual(again, first);
    assert.equal(await count('dst'), 3);
    assert.equal((await ledger()).length, 1);
  });

  it('two concurrent attempts of one task: the second waits for the first and reports its commit', async () => {
    await postgresSink.prepare!(sink(), KV, activityCtx());
    const a = await postgresSink.open(sink(), attempt(0, { attemptId: 'a1' }));
    const stagedA = await a.stage({ name: 'part-00000', stream: csvStream(CSV), columns: KV });
    // The same rows again: were both to load them, the target's primary key would fail the second.
    const opening = postgresSink.open(sink(), attempt(0, { attemptId: 'a2' }));
    await eventually(
      async () => (await waitingOnLock('ferry_ledger')) === 1,
      'the second attempt to wait for the first one',
    );
    await a.commit();
    const b = await opening;
    const streamB = csvStream(CSV);
    assert.deepEqual(await b.stage({ name: 'part-00000', stream: streamB, columns: KV }), stagedA);
    assert.ok(streamB.readableEnded);
    await b.commit();
    assert.deepEqual(await query(`SELECT k FROM ${schema}.dst ORDER BY k`), [{ k: 1 }, { k: 2 }, { k: 3 }]);
    assert.equal((await ledger()).length, 1);

    // The other way round: the first attempt aborts, so the second one loads its own rows.
    const c = await postgresSink.open(sink(), attempt(1, { attemptId: 'a1' }));
    await c.stage({ name: 'part-00001', stream: csvStream('k,v\n10,c\n'), columns: KV });
    const openingD = postgresSink.open(sink(), attempt(1, { attemptId: 'a2' }));
    await eventually(async () => (await waitingOnLock('ferry_ledger')) === 1, 'the second attempt to wait');
    await c.abort();
    const d = await openingD;
    const other = 'k,v\n7,seven\n';
    assert.deepEqual(await d.stage({ name: 'part-00001', stream: csvStream(other), columns: KV }), {
      name: 'part-00001',
      bytes: other.length,
      sha256: sha256(other),
      rows: 1,
    });
    await d.commit();
    assert.deepEqual(await query(`SELECT k FROM ${schema}.dst WHERE k > 3 ORDER BY k`), [{ k: 7 }]);
    assert.equal((await ledger()).length, 2);
  });

  it('a task of several objects records their sums; a later attempt reports them once', async () => {
    await postgresSink.prepare!(sink(), KV, activityCtx());
    const parts = ['k,v\n1,a\n2,b\n', 'k,v\n3,c\n'];
    const writer = await postgresSink.open(sink(), attempt(0));
    const staged: StagedObject[] = [];
    for (const [i, part] of parts.entries()) {
      staged.push(await writer.stage({ name: `f${i}.csv`, stream: csvStream(part), columns: KV }));
    }
    await writer.commit();
    assert.deepEqual(
      staged.map((s) => [s.rows, s.bytes, s.sha256]),
      parts.map((p, i) => [i === 0 ? 2 : 1, p.length, sha256(p)]),
    );
    const combined = sha256(parts.map((p) => `${sha256(p)}\n`).join(''));
    const bytes = parts[0]!.length + parts[1]!.length;
    assert.deepEqual(await ledger(), [{ task_index: 0, rows: '3', bytes: String(bytes), sha256: combined }]);

    const retry = await postgresSink.open(sink(), attempt(0, { attemptId: 'a2' }));
    const again: StagedObject[] = [];
    for (const [i, part] of parts.entries()) {
      again.push(await retry.stage({ name: `f${i}.csv`, stream: csvStream(part), columns: KV }));
    }
    await retry.commit();
    assert.deepEqual(
      again.map((s) => [s.rows, s.bytes]),
      [
        [3, bytes],
        [0, 0],
      ],
    );
    assert.equal(await count('dst'), 3);
  });

  it('loads into the target columns the sink names, in the source order', async () => {
    await admin.query(`ALTER TABLE ${schema}.dst RENAME COLUMN v TO label`);
    const options = { columns: ['k', 'label'] };
    await postgresSink.prepare!(sink(options), KV, activityCtx());
    await load(sink(options), attempt(0), CSV);
    assert.deepEqual(await query(`SELECT label FROM ${schema}.dst WHERE k = 1`), [{ label: 'one' }]);
    await rejectsWith(
      postgresSink.prepare!(sink({ columns: ['k'] }), KV, activityCtx()),
      'bad_request',
      /columns lists 1 columns for a source of 2 \(k, v\) \(prepare\)/,
    );
    await rejectsWith(
      postgresSink.prepare!(sink({ columns: ['k', 'nope'] }), KV, activityCtx()),
      'store_object_missing',
      new RegExp(`column "nope" of relation "${schema}.dst" does not exist \\(prepare\\)`),
    );
  });
});

describe('postgres sink: create', () => {
  it('creates the table from the source columns, keeping PostgreSQL types that mean the same', async () => {
    const columns: TableColumn[] = [
      { name: 'id', type: 'int64', nullable: false, nativeType: 'bigint' },
      {
        name: 'amount',
        type: 'decimal',
        precision: 14,
        scale: 2,
        nullable: true,
        nativeType: 'decimal(14,2)',
      },
      { name: 'big', type: 'decimal', nullable: true, nativeType: 'numeric' },
      { name: 'placed', type: 'timestamp', nullable: true, nativeType: 'datetime(6)' },
      { name: 'seen', type: 'timestamptz', nullable: true, nativeType: 'timestamp' },
      { name: 'f', type: 'float32', nullable: true, nativeType: 'float' },
      { name: 'd', type: 'float64', nullable: true, nativeType: 'double' },
      { name: 'name', type: 'text', nullable: true, nativeType: 'varchar(40)' },
      { name: 'iv', type: 'text', nullable: true, nativeType: 'interval' },
      { name: 'evil', type: 'text', nullable: true, nativeType: 'text); DROP TABLE x; --' },
      { name: 'flag', type: 'int16', nullable: true, nativeType: 'tinyint(1)' },
      { name: 'j', type: 'json', nullable: true },
      { name: 'u', type: 'uuid', nullable: true },
      { name: 'b', type: 'binary', nullable: true, nativeType: 'blob' },
      { name: 'ok', type: 'boolean', nullable: true },
      { name: 'day', type: 'date', nullable: true },
      { name: 'tm', type: 'time', nullable: true },
    ];
    const target = sink({ table: `${schema}.made`, mode: 'create' });
    assert.deepEqual(await postgresSink.prepare!(target, columns, activityCtx()), { finalize: false });
    assert.deepEqual(await postgresSink.prepare!(target, columns, activityCtx()), { finalize: false });
    const described = await query<{ name: string; type: string; notnull: boolean }>(
      `SELECT attname AS name, format_type(atttypid, atttypmod) AS type, attnotnull AS notnull
         FROM pg_attribute WHERE attrelid = '${schema}.made'::regclass AND attnum > 0 ORDER BY attnum`,
    );
    assert.deepEqual(
      described.map((c) => `${c.name} ${c.type}${c.notnull ? ' NOT NULL' : ''}`),
      [
        'id bigint NOT NULL',
        'amount numeric(14,2)',
        'big numeric',
        'placed timestamp without time zone',
        'seen timestamp with time zone',
        'f real',
        'd double precision',
        'name character varying(40)',
        'iv interval',
        'evil text',
        'flag smallint',
        'j jsonb',
        'u uuid',
        'b bytea',
        'ok boolean',
        'day date',
        'tm time without time zone',
      ],
    );
    const csv = `${columns.map((c) => c.name).join(',')}\n1,12.50,1e40,2024-02-29 13:45:00.123456,2024-02-29 13:45:00+00,0.1,0.1,n,1 day,e,1,"{""a"": 1}",a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11,\\x00ff,true,2024-02-29,13:45:00\n`;
    // Its own run: the ledger of this schema already holds run1's tasks.
    await load(target, attempt(0, { runId: 'run-create' }), csv, columns);
    assert.deepEqual(await query(`SELECT amount::text, seen::text, b::text, ok FROM ${schema}.made`), [
      { amount: '12.50', seen: '2024-02-29 13:45:00+00', b: '\\x00ff', ok: true },
    ]);
  });

  it('prepares idempotently, even twice at once, with a ledger table of its own name', async () => {
    const target = sink({ table: `${schema}.twice`, mode: 'create', ledgerTable: 'my_ledger' });
    const results = await Promise.all([
      postgresSink.prepare!(target, KV, activityCtx()),
      postgresSink.prepare!(target, KV, activityCtx()),
    ]);
    assert.deepEqual(results, [{ finalize: false }, { finalize: false }]);
    await load(target, attempt(0, { runId: 'run-twice' }), CSV);
    assert.deepEqual(await query(`SELECT task_index, rows FROM ${schema}.my_ledger`), [
      { task_index: 0, rows: '3' },
    ]);
    assert.equal(await count('twice'), 3);
  });

  it('refuses create without the source columns, and append to a missing table', async () => {
    await rejectsWith(
      postgresSink.prepare!(sink({ mode: 'create' }), undefined, activityCtx()),
      'bad_request',
      /^postgres "pg2": mode create needs the source's columns/,
    );
    const err = await rejectsWith(
      postgresSink.prepare!(sink({ table: `${schema}.nope` }), KV, activityCtx()),
      'store_object_missing',
    );
    assert.equal(err.message, `postgres "pg2": relation "${schema}.nope" does not exist (prepare)`);
    assert.match(err.hint ?? '', /mode to "create"/);
    assert.equal(err.retryable, false);
    // Found through the search_path when unqualified: the message says where it looked.
    const bare = await rejectsWith(
      postgresSink.prepare!(sink({ table: 'nope' }), KV, activityCtx()),
      'store_object_missing',
    );
    assert.equal(bare.message, `postgres "pg2": relation "public.nope" does not exist (prepare)`);
  });
});

/** Backends of this schema waiting for a lock, whose query mentions `fragment`. */
async function waitingOnLock(fragment: string): Promise<number> {
  const [row] = await query<{ n: number }>(
    `SELECT count(*)::int AS n FROM pg_stat_activity
      WHERE pid <> pg_backend_pid() AND wait_event_type = 'Lock'
        AND position('${schema}' in query) > 0 AND position('${fragment}' in query) > 0`,
  );
  return row!.n;
}

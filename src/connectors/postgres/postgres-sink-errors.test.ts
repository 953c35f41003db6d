import assert from 'node:assert/strict';
import { Readable } from 'node:stream';
import { after, before, beforeEach, describe, it } from 'node:test';
import type { Client } from 'pg';
import { FerryError } from '../../common/errors.ts';
import type { ResolvedEndpointT } from '../../protocol/task.ts';
import type { TableColumn } from '../../tables/table-columns.ts';
import { postgresSink } from './postgres-connector.ts';
import {
  activityCtx,
  attempt,
  backends,
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
let readOnly: string;

const KV: TableColumn[] = [
  { name: 'k', type: 'int32', nullable: false },
  { name: 'v', type: 'text', nullable: true },
];

before(async () => {
  db = await createTestSchema('pgsinkerr');
  ({ admin, schema } = db);
  readOnly = `ferry_ro_${db.suffix}`;
  await admin.query(`CREATE ROLE ${readOnly} LOGIN; GRANT USAGE ON SCHEMA ${schema} TO ${readOnly}`);
});

after(async () => {
  await db.drop([readOnly]);
});

function sink(
  options: Record<string, unknown> = {},
  properties: Record<string, unknown> = {},
): ResolvedEndpointT {
  return endpoint({ table: `${schema}.dst`, ...options }, properties, 'pg2');
}

async function counts(): Promise<{ dst: number; ledger: number }> {
  const { rows } = await admin.query<{ dst: number; ledger: number }>(
    `SELECT (SELECT count(*)::int FROM ${schema}.dst) AS dst, (SELECT count(*)::int FROM ${schema}.ferry_ledger) AS ledger`,
  );
  return rows[0]!;
}

describe('postgres sink errors', () => {
  beforeEach(async () => {
    await admin.query(`DROP TABLE IF EXISTS ${schema}.dst, ${schema}.ferry_ledger;
      CREATE TABLE ${schema}.dst (k int PRIMARY KEY, v text NOT NULL DEFAULT 'x')`);
    await postgresSink.prepare!(sink(), KV, activityCtx());
  });

  it('fails on a bad value, not retryable, naming the table and the line; nothing is loaded', async () => {
    const writer = await postgresSink.open(sink(), attempt(0));
    const err = await rejectsWith(
      writer.stage({ name: 'part-00000', stream: csvStream('k,v\n1,a\nzz,b\n'), columns: KV }),
      'store_error',
    );
    await writer.abort();
    assert.equal(
      err.message,
      `postgres "pg2": invalid input syntax for type integer: "zz" at line 3, column k (copy part-00000 into ${schema}.dst)`,
    );
    assert.equal(err.retryable, false);
    // A broken constraint is just as final.
    const again = await postgresSink.open(sink(), attempt(0));
    const nulls = await rejectsWith(
      again.stage({ name: 'part-00000', stream: csvStream('k,v\n1,\n'), columns: KV }),
      'store_error',
      /null value in column "v" .* violates not-null constraint at line 2 \(copy part-00000 into/,
    );
    await again.abort();
    assert.equal(nulls.retryable, false);
    assert.deepEqual(await counts(), { dst: 0, ledger: 0 });
  });

  it('reports a column the target lacks as store_object_missing', async () => {
    const writer = await postgresSink.open(sink(), attempt(0));
    const columns: TableColumn[] = [...KV, { name: 'nope', type: 'text', nullable: true }];
    await rejectsWith(
      writer.stage({ name: 'part-00000', stream: csvStream('k,v,nope\n1,a,b\n'), columns }),
      'store_object_missing',
      /column "nope" of relation "dst" does not exist \(copy part-00000 into/,
    );
    await writer.abort();
  });

  it('fails the stage with the source error when the source fails mid-COPY, loading nothing', async () => {
    const writer = await postgresSink.open(sink(), attempt(0));
    const source = new Readable({ read() {} });
    source.push('k,v\n1,a\n');
    const staging = writer.stage({ name: 'part-00000', stream: source, columns: KV });
    await eventually(async () => (await backends(admin, `COPY "${schema}"`)) === 1, 'the COPY to start');
    source.destroy(new FerryError('store_unreachable', 'the source went away'));
    await rejectsWith(staging, 'store_unreachable', /^the source went away$/);
    await writer.abort();
    assert.deepEqual(await counts(), { dst: 0, ledger: 0 });
    await eventually(async () => (await backends(admin, `"${schema}"`)) === 0, 'the connection to close');
  });

  it('cancels mid-COPY: the stage fails as cancelled and the server backend ends', async () => {
    const controller = new AbortController();
    const writer = await postgresSink.open(sink(), attempt(0, { signal: controller.signal }));
    const source = new Readable({ read() {} });
    source.push('k,v\n1,a\n');
    const staging = writer.stage({ name: 'part-00000', stream: source, columns: KV });
    await eventually(async () => (await backends(admin, `COPY "${schema}"`)) === 1, 'the COPY to start');
    controller.abort();
    await rejectsWith(staging, 'cancelled');
    assert.ok(source.destroyed, 'the source is released');
    await writer.abort();
    await eventually(async () => (await backends(admin, `"${schema}"`)) === 0, 'the backend to end');
    assert.deepEqual(await counts(), { dst: 0, ledger: 0 });
  });

  it('reports a refused permission as a final store_error', async () => {
    const readOnlySink = sink({}, { user: readOnly });
    const ledgerErr = await rejectsWith(
      postgresSink.open(readOnlySink, attempt(0)),
      'store_error',
      /^postgres "pg2": permission denied for table ferry_ledger \(open\)$/,
    );
    assert.equal(ledgerErr.retryable, false);
    await admin.query(`GRANT SELECT, INSERT, UPDATE ON ${schema}.ferry_ledger TO ${readOnly};
                       GRANT SELECT ON ${schema}.dst TO ${readOnly}`);
    const writer = await postgresSink.open(readOnlySink, attempt(0));
    const err = await rejectsWith(
      writer.stage({ name: 'part-00000', stream: csvStream('k,v\n1,a\n'), columns: KV }),
      'store_error',
      /permission denied for table dst \(copy part-00000 into/,
    );
    assert.equal(err.retryable, false);
    await writer.abort();
    assert.deepEqual(await counts(), { dst: 0, ledger: 0 });
  });

  it('reports an unreachable server (retryable) and a wrong database, never showing the password', async () => {
    const password = 'hunter2-secret';
    for (const run of [
      () => postgresSink.prepare!(sink({}, { port: 1, password }), KV, activityCtx()),
      () => postgresSink.open(sink({}, { port: 1, password }), attempt(0)),
      () => postgresSink.finalize!(sink({ mode: 'overwrite' }, { port: 1, password }), activityCtx()),
    ]) {
      const err = await rejectsWith(run(), 'store_unreachable');
      assert.equal(err.message, 'postgres "pg2": cannot reach 127.0.0.1:1: connection refused (connect)');
      assert.equal(err.retryable, true);
    }
    const err = await rejectsWith(
      postgresSink.open(sink({}, { database: `nodb_${db.suffix}`, password }), attempt(0)),
      'store_object_missing',
      /database "nodb_.*" does not exist \(connect\)/,
    );
    assert.ok(!err.message.includes(password));
    assert.equal(err.retryable, false);
  });

  it('refuses an object without columns, and options it cannot use, before touching the store', async () => {
    const writer = await postgresSink.open(sink(), attempt(0));
    const stream = csvStream('k,v\n');
    await rejectsWith(writer.stage({ name: 'f.bin', stream }), 'bad_request', /has no columns/);
    assert.ok(stream.destroyed);
    await writer.abort();
    for (const options of [
      { table: 'a.b.c' },
      { columns: ['k', 'k'] },
      { mode: 'replace' },
      { ledgerTable: 'x"y' },
    ]) {
      await rejectsWith(postgresSink.open(sink(options), attempt(0)), 'bad_request');
    }
  });
});

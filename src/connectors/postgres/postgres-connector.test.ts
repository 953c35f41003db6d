import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { once } from 'node:events';
import { mkdtemp, readdir, readFile, realpath, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { finished } from 'node:stream/promises';
import { after, before, describe, it } from 'node:test';
import { DatabaseError, type Client } from 'pg';
import { FerryError } from '../../common/errors.ts';
import type { PartitionT, ResolvedEndpointT } from '../../protocol/task.ts';
import { filesystemSink } from '../filesystem/filesystem-connector.ts';
import { rangeSql } from './postgres-conditions.ts';
import { quoteQualifiedName } from './postgres-config.ts';
import { postgresSource } from './postgres-connector.ts';
import { postgresError } from './postgres-errors.ts';
import {
  attempt,
  backends as backendsOf,
  createTestSchema,
  endpoint,
  eventually,
  only,
  planCtx as ctx,
  rejectsWith,
  text,
  type TestSchema,
} from './postgres-test-kit.ts';

// Everything this file creates lives in its own schema (and a role), with a random suffix, dropped at the end.
const ROWS = 1000;
let db: TestSchema;
let admin: Client;
let schema: string;
let suffix: string;
const backends = (fragment: string): Promise<number> => backendsOf(admin, fragment);

before(async () => {
  db = await createTestSchema('pg');
  ({ admin, schema, suffix } = db);
  await admin.query(`
    CREATE TABLE ${schema}.orders (
      k integer PRIMARY KEY,
      id bigint, small integer, amount numeric(12,2), big numeric, score double precision,
      at timestamptz, day date, ts timestamp, note text);
    INSERT INTO ${schema}.orders
    SELECT g,
      CASE WHEN g % 50 = 0 THEN NULL ELSE g::bigint * 1000003 - 400000000 END,
      CASE WHEN g % 45 = 0 THEN NULL ELSE (g % 300) - 100 END,
      CASE WHEN g % 40 = 0 THEN NULL WHEN g = 7 THEN 'NaN' ELSE round((g * 13.37 - 5000)::numeric, 2) END,
      CASE WHEN g % 38 = 0 THEN NULL WHEN g = 8 THEN 'Infinity' WHEN g = 9 THEN '-Infinity' WHEN g = 10 THEN 'NaN'
           ELSE (g::numeric ^ 3) * 1e12 / 7 END,
      CASE WHEN g % 35 = 0 THEN NULL WHEN g = 11 THEN 'Infinity' WHEN g = 12 THEN '-Infinity' WHEN g = 13 THEN 'NaN'
           ELSE g * 0.5 - 100.25 END,
      CASE WHEN g % 30 = 0 THEN NULL WHEN g = 3 THEN 'infinity' WHEN g = 4 THEN '-infinity'
           ELSE timestamptz '2024-01-01 00:00:00+00' + g * interval '17 minutes 3.000007 seconds' END,
      CASE WHEN g % 25 = 0 THEN NULL WHEN g = 5 THEN 'infinity' WHEN g = 6 THEN date '0044-03-15 BC'
           ELSE date '1999-12-01' + g * 3 END,
      CASE WHEN g % 20 = 0 THEN NULL ELSE timestamp '2020-02-29 12:00:00' + g * interval '1 day 1 second' END,
      CASE WHEN g = 1 THEN 'he said "hi", then left' WHEN g = 2 THEN E'two\\nlines' ELSE 'row ' || g END
    FROM generate_series(1, ${ROWS}) g;
    CREATE TABLE ${schema}.tiny (k integer, v bigint);
    INSERT INTO ${schema}.tiny VALUES (1, 1), (2, 2), (3, 3), (4, NULL);
    CREATE TABLE ${schema}.same (k integer, v bigint);
    INSERT INTO ${schema}.same SELECT g, 7 FROM generate_series(1, 5) g;
    CREATE TABLE ${schema}.empty (k integer, v bigint);
    CREATE TABLE ${schema}.wide (k integer, pad text);
    INSERT INTO ${schema}.wide SELECT g, repeat(md5(g::text), 8) FROM generate_series(1, 100000) g;
  `);
});

after(async () => {
  await db.drop([`ferry_nologin_${suffix}`]);
});

/** The partitions of a plan without a watermark. */
async function plan(source: ResolvedEndpointT): Promise<PartitionT[]> {
  const result = await postgresSource.plan(source, ctx());
  assert.equal(result.window, undefined);
  return result.partitions;
}

/** Reads every partition (column k only) and returns the keys seen, checking rows() on the way. */
async function readKeys(source: ResolvedEndpointT, partitions: PartitionT[]): Promise<number[]> {
  const keys: number[] = [];
  for (const [index, partition] of partitions.entries()) {
    const object = await only(postgresSource.read(source, partition, attempt(index)));
    assert.equal(object.name, `part-${String(index).padStart(5, '0')}`);
    assert.equal(object.rows(), undefined);
    const lines = (await text(object)).split('\n').filter((l) => l !== '');
    assert.equal(lines[0], 'k');
    const body = lines.slice(1).map(Number);
    assert.equal(object.rows(), body.length);
    keys.push(...body);
  }
  return keys.sort((a, b) => a - b);
}

function checkRangeShape(partitions: PartitionT[], column: string, most: number): void {
  assert.ok(partitions.length > 1 && partitions.length <= most, `${partitions.length} partitions`);
  const ranges = partitions.map((p) => {
    assert.equal(p.kind, 'range');
    assert.ok(p.kind === 'range');
    return p;
  });
  assert.deepEqual(
    ranges.map((r) => [r.column, r.includeNulls]),
    ranges.map((_, i) => [column, i === 0]),
  );
  assert.equal(ranges[0]?.lo, null);
  assert.equal(ranges.at(-1)?.hi, null);
  for (let i = 1; i < ranges.length; i++) {
    assert.equal(ranges[i]?.lo, ranges[i - 1]?.hi, 'ranges are contiguous');
    assert.notEqual(ranges[i]?.lo, null);
  }
}

const everyKey = Array.from({ length: ROWS }, (_, i) => i + 1);

describe('postgres plan and read', () => {
  it('reads a whole table as CSV with a header and counts its rows', async () => {
    const source = endpoint({ table: `${schema}.orders`, columns: ['k', 'note'] });
    const partitions = await plan(source);
    assert.deepEqual(partitions, [{ kind: 'whole' }]);
    const object = await only(postgresSource.read(source, { kind: 'whole' }, attempt(3)));
    assert.equal(object.name, 'part-00003');
    const csv = await text(object);
    assert.ok(
      csv.startsWith('k,note\n1,"he said ""hi"", then left"\n2,"two\nlines"\n3,row 3\n'),
      csv.slice(0, 80),
    );
    assert.equal(object.rows(), ROWS);
  });

  for (const column of ['id', 'small', 'amount', 'big', 'score', 'at', 'day', 'ts']) {
    it(`splits on ${column} into ranges that cover every row exactly once, NULLs included`, async () => {
      const source = endpoint({
        table: `${schema}.orders`,
        columns: ['k'],
        partitionColumn: column,
        partitions: 8,
      });
      const partitions = await plan(source);
      checkRangeShape(partitions, column, 8);
      assert.deepEqual(await readKeys(source, partitions), everyKey);
    });
  }

  it('casts bounds to the column type in the COPY query', () => {
    const column = { name: 'id', castType: 'bigint', kind: 'integer' as const };
    assert.equal(
      rangeSql(column, { kind: 'range', column: 'id', lo: '10', hi: '20', includeNulls: false }),
      `"id" >= '10'::bigint AND "id" < '20'::bigint`,
    );
    assert.equal(
      rangeSql(column, { kind: 'range', column: 'id', lo: null, hi: '10', includeNulls: true }),
      `("id" < '10'::bigint OR "id" IS NULL)`,
    );
    assert.equal(
      rangeSql(column, {
        kind: 'range',
        column: 'id',
        lo: `1'); DROP TABLE x; --`,
        hi: null,
        includeNulls: false,
      }),
      `"id" >= '1''); DROP TABLE x; --'::bigint`,
    );
  });

  it('drops duplicate bounds: 3 distinct values into 8 partitions make no empty-width ranges', async () => {
    const source = endpoint({ table: `${schema}.tiny`, columns: ['k'], partitionColumn: 'v', partitions: 8 });
    const partitions = await plan(source);
    checkRangeShape(partitions, 'v', 3);
    assert.deepEqual(await readKeys(source, partitions), [1, 2, 3, 4]);
  });

  it('plans one whole partition for an empty table, a single value, or partitions: 1', async () => {
    for (const options of [
      { table: `${schema}.empty`, partitionColumn: 'v' },
      { table: `${schema}.same`, partitionColumn: 'v' },
      { table: `${schema}.orders`, partitionColumn: 'id', partitions: 1 },
    ]) {
      assert.deepEqual(await plan(endpoint(options)), [{ kind: 'whole' }], JSON.stringify(options));
    }
    const empty = await only(
      postgresSource.read(endpoint({ table: `${schema}.empty` }), { kind: 'whole' }, attempt(0)),
    );
    assert.equal(await text(empty), 'k,v\n');
    assert.equal(empty.rows(), 0);
  });

  it('lands in a filesystem sink, a second attempt replacing the first', async () => {
    const dir = await realpath(await mkdtemp(path.join(os.tmpdir(), 'ferry-pg-test-')));
    try {
      const source = endpoint({
        table: `${schema}.orders`,
        columns: ['k', 'note'],
        partitionColumn: 'id',
        partitions: 4,
      });
      const sink: ResolvedEndpointT = {
        type: 'filesystem',
        linkedService: 'out',
        properties: { root: dir },
        options: {},
      };
      const partitions = await plan(source);
      for (const attemptId of ['a1', 'a2']) {
        let rows = 0;
        for (const [index, partition] of partitions.entries()) {
          const actx = { ...attempt(index), attemptId, allowedRoots: [dir] };
          const writer = await filesystemSink.open(sink, actx);
          const object = await only(postgresSource.read(source, partition, actx));
          const staged = await writer.stage({ name: `${object.name}.csv`, stream: object.stream });
          await writer.commit();
          rows += object.rows() ?? 0;
          const file = await readFile(path.join(dir, `${object.name}.csv`));
          assert.equal(staged.bytes, file.length);
          assert.equal(staged.sha256, createHash('sha256').update(file).digest('hex'));
        }
        assert.equal(rows, ROWS);
      }
      assert.deepEqual(
        await readdir(dir),
        partitions.map((_, i) => `part-${String(i).padStart(5, '0')}.csv`),
      );
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });

  it('closes every connection it opened', async () => {
    const source = endpoint({ table: `${schema}.tiny`, partitionColumn: 'v' });
    await readKeys(
      endpoint({ table: `${schema}.tiny`, columns: ['k'], partitionColumn: 'v' }),
      await plan(source),
    );
    await eventually(async () => (await backends(`"${schema}"`)) === 0, 'connections to close');
  });
});

describe('postgres errors', () => {
  it('reports a missing table, column or database as store_object_missing', async () => {
    const err = await rejectsWith(
      postgresSource.plan(endpoint({ table: `${schema}.orderz` }), ctx()),
      'store_object_missing',
    );
    assert.equal(err.message, `postgres "pg1": relation "${schema}.orderz" does not exist (check table)`);
    assert.equal(err.retryable, false);
    await rejectsWith(
      postgresSource.plan(endpoint({ table: `${schema}.orders`, columns: ['k', 'nope'] }), ctx()),
      'store_object_missing',
      /column "nope" of relation .* does not exist/,
    );
    // Reading without planning checks the columns too.
    await rejectsWith(
      only(
        postgresSource.read(
          endpoint({ table: `${schema}.orders`, columns: ['nope'] }),
          { kind: 'whole' },
          attempt(0),
        ),
      ),
      'store_object_missing',
      /column "nope" of relation .* does not exist \(check table\)/,
    );
    // A bound the column's type cannot read fails in the COPY itself, through the stream.
    const object = await only(
      postgresSource.read(
        endpoint({ table: `${schema}.orders`, columns: ['k'] }),
        { kind: 'range', column: 'id', lo: 'abc', hi: null, includeNulls: false },
        attempt(0),
      ),
    );
    // It fails before anyone listens: the stream keeps the error for whoever reads it.
    await eventually(async () => object.stream.destroyed, 'the COPY to fail');
    const bad = await rejectsWith(
      text(object),
      'store_error',
      /invalid input syntax for type bigint: "abc" \(copy\)/,
    );
    assert.equal(bad.retryable, false);
    // The server trusts 127.0.0.1, so a wrong password is accepted there; an unknown database (3D000) is not.
    await rejectsWith(
      postgresSource.plan(endpoint({ table: 'orders' }, { database: `nodb_${suffix}` }), ctx()),
      'store_object_missing',
      /database "nodb_.*" does not exist \(connect\)/,
    );
  });

  it('reports refused logins as store_auth, not retryable, and never shows the password', async () => {
    const password = `pw-${suffix}-secret`;
    await admin.query(`CREATE ROLE ferry_nologin_${suffix} NOLOGIN PASSWORD '${password}'`);
    for (const user of [`ferry_nologin_${suffix}`, `ferry_norole_${suffix}`]) {
      const err = await rejectsWith(
        postgresSource.plan(endpoint({ table: 'x' }, { user, password }), ctx()),
        'store_auth',
      );
      assert.equal(err.retryable, false);
      assert.ok(!err.message.includes(password));
      assert.match(err.message, /^postgres "pg1": .* \(connect\)$/);
    }
  });

  it('reports an unreachable server as store_unreachable, retryable', async () => {
    const err = await rejectsWith(
      postgresSource.plan(endpoint({ table: 'x' }, { port: 1, password: 'hunter22' }), ctx()),
      'store_unreachable',
    );
    assert.equal(err.retryable, true);
    assert.equal(err.message, 'postgres "pg1": cannot reach 127.0.0.1:1: connection refused (connect)');
  });

  it('refuses odd names and unsupported partition columns as bad_request', async () => {
    for (const table of ['a.b.c', 'x"y', '.orders', 'orders ', '']) {
      await rejectsWith(postgresSource.plan(endpoint({ table }), ctx()), 'bad_request');
    }
    assert.equal(quoteQualifiedName('Public.Orders'), '"Public"."Orders"');
    assert.equal(quoteQualifiedName('orders'), '"orders"');
    await rejectsWith(
      postgresSource.plan(endpoint({ table: `${schema}.orders`, partitionColumn: 'note' }), ctx()),
      'bad_request',
      /partitionColumn "note" has type text/,
    );
    await rejectsWith(
      postgresSource.plan(endpoint({ table: `${schema}.orders`, partitions: 4 }), ctx()),
      'bad_request',
      /needs a partitionColumn/,
    );
  });

  it('decides retries by SQLSTATE', () => {
    const scope = { linkedService: 'pg1', address: 'db:5432', password: 'sekret-pass' };
    const cases: [string, FerryError['code'], boolean][] = [
      ['28P01', 'store_auth', false],
      ['42P01', 'store_object_missing', false],
      ['40001', 'store_error', true],
      ['40P01', 'store_error', true],
      ['57P01', 'store_error', true],
      ['08006', 'store_error', true],
      ['42501', 'store_error', false],
    ];
    for (const [sqlstate, code, retryable] of cases) {
      const dbError = new DatabaseError('failed near sekret-pass', 0, 'error');
      dbError.code = sqlstate;
      const err = postgresError(dbError, scope, 'copy');
      assert.deepEqual([err.code, err.retryable], [code, retryable], sqlstate);
      assert.equal(err.message, 'postgres "pg1": failed near *** (copy)');
    }
  });

  it('reports a backend terminated mid-COPY as a retryable failure', async () => {
    const source = endpoint({ table: `${schema}.wide` });
    const object = await only(postgresSource.read(source, { kind: 'whole' }, attempt(0)));
    await once(object.stream, 'data');
    object.stream.pause();
    // Listen before the failure can happen: an 'error' nobody hears is thrown.
    const ended = finished(object.stream);
    ended.catch(() => {});
    await admin.query(
      `SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE query LIKE 'COPY%"${schema}"%' AND pid <> pg_backend_pid()`,
    );
    object.stream.resume();
    try {
      await ended;
      assert.fail('the stream should fail');
    } catch (err) {
      assert.ok(err instanceof FerryError, String(err));
      assert.ok(['store_error', 'store_unreachable'].includes(err.code), err.message);
      assert.equal(err.retryable, true);
    } finally {
      object.stream.destroy();
    }
    await eventually(
      async () => (await backends(`"${schema}"."wide"`)) === 0,
      'the terminated backend to exit',
    );
  });
});

describe('postgres cancellation', () => {
  it('stops a read when the signal aborts and ends the server side', async () => {
    const controller = new AbortController();
    const object = await only(
      postgresSource.read(
        endpoint({ table: `${schema}.wide` }),
        { kind: 'whole' },
        attempt(0, { signal: controller.signal }),
      ),
    );
    try {
      await once(object.stream, 'data');
      object.stream.pause();
      assert.equal(await backends(`COPY (SELECT * FROM "${schema}"."wide")`), 1);
    } finally {
      controller.abort();
    }
    await rejectsWith(finished(object.stream), 'cancelled');
    assert.equal(object.rows(), undefined);
    await eventually(
      async () => (await backends(`COPY (SELECT * FROM "${schema}"."wide")`)) === 0,
      'the COPY backend to end',
    );
  });

  it('does not start when the signal has already aborted', async () => {
    const controller = new AbortController();
    controller.abort();
    await rejectsWith(
      postgresSource.plan(endpoint({ table: `${schema}.orders` }), ctx(controller.signal)),
      'cancelled',
    );
  });
});

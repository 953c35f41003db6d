import assert from 'node:assert/strict';
import { once } from 'node:events';
import { finished } from 'node:stream/promises';
import { after, before, describe, it } from 'node:test';
import mysql from 'mysql2/promise';
import { FerryError } from '../../common/errors.ts';
import type { PartitionT, ResolvedEndpointT } from '../../protocol/task.ts';
import type { AttemptContext, ConnectorContext, SourceObject } from '../connector.ts';
import { boundLiteral } from './mysql-config.ts';
import { mysqlSource } from './mysql-connector.ts';
import { mysqlError } from './mysql-errors.ts';
import { formatMicros } from './mysql-planner.ts';
import { rangeSql } from './mysql-reader.ts';

// MariaDB at 127.0.0.1:3306, user root without a password. Everything this file creates lives in its
// own database (and one user), with a random suffix, dropped at the end.
const SERVER = { host: '127.0.0.1', port: 3306, user: 'root' };
const suffix = `${process.pid}_${Date.now()}`;
const db = `ferry_t_${suffix}`;
const user = `ferry_u_${suffix}`;
const ROWS = 1000;
const BIG_ROWS = 200_000;
let admin: mysql.Connection;

before(async () => {
  admin = await mysql.createConnection({ ...SERVER, database: 'test', multipleStatements: true });
  await admin.query(`SET time_zone = '+00:00'`);
  await admin.query(`CREATE DATABASE ${db}`);
  await admin.query(`USE ${db}`);
  // Digits cross-joined make any row count without recursive CTE limits.
  await admin.query(`
    CREATE TABLE digits (d int);
    INSERT INTO digits VALUES (0),(1),(2),(3),(4),(5),(6),(7),(8),(9);
    CREATE TABLE seq (g int PRIMARY KEY);
    INSERT INTO seq SELECT 1 + a.d + 10 * b.d + 100 * c.d + 1000 * e.d + 10000 * f.d + 100000 * h.d
      FROM digits a, digits b, digits c, digits e, digits f, digits h;
    CREATE TABLE orders (
      k int PRIMARY KEY, id bigint, amount decimal(12,2), score double,
      at datetime(6) NULL, day date NULL, ts timestamp(6) NULL, note text);
    INSERT INTO orders SELECT g,
      CASE WHEN g % 50 = 0 THEN NULL ELSE g * 1000003 - 400000000 END,
      CASE WHEN g % 40 = 0 THEN NULL ELSE ROUND(g * 13.37 - 5000, 2) END,
      CASE WHEN g % 35 = 0 THEN NULL ELSE g * 0.5 - 100.25 END,
      CASE WHEN g % 30 = 0 THEN NULL ELSE TIMESTAMP('2024-01-01 00:00:00') + INTERVAL g * 1023000007 MICROSECOND END,
      CASE WHEN g % 25 = 0 THEN NULL ELSE DATE('1999-12-01') + INTERVAL g * 3 DAY END,
      CASE WHEN g % 20 = 0 THEN NULL ELSE TIMESTAMP('2020-02-29 12:00:00') + INTERVAL g * 86401 SECOND END,
      CONCAT('row ', g)
      FROM seq WHERE g <= ${ROWS};
    CREATE TABLE kinds (
      k int PRIMARY KEY, note varchar(100), big bigint unsigned, dec38 decimal(38,10), d date,
      dt datetime(6), ts timestamp NULL, bin blob, f double);
    INSERT INTO kinds VALUES
      (1, 'he said "hi", then left', 18446744073709551615, 1234567890123456789012345678.1234567890,
       '2024-02-29', '2024-02-29 23:59:59.123456', '2024-01-01 00:00:00', X'00FF41', 0.1),
      (2, 'two\\nlines', 0, -0.0000000001, NULL, NULL, NULL, X'', -1.5),
      (3, 'héllo ✓ 日本 🚢', NULL, NULL, NULL, NULL, NULL, NULL, NULL),
      (4, '', NULL, NULL, NULL, NULL, NULL, NULL, NULL);
    CREATE TABLE tiny (k int, v bigint);
    INSERT INTO tiny VALUES (1, 1), (2, 2), (3, 3), (4, NULL);
    CREATE TABLE same (k int, v bigint);
    INSERT INTO same VALUES (1, 7), (2, 7), (3, 7);
    CREATE TABLE empty (k int, v bigint);
    CREATE TABLE big (k int PRIMARY KEY, pad varchar(64));
    INSERT INTO big SELECT g, REPEAT(MD5(g), 2) FROM seq WHERE g <= ${BIG_ROWS};
  `);
});

after(async () => {
  await admin.query(`DROP DATABASE IF EXISTS ${db}`);
  await admin.query(`DROP USER IF EXISTS '${user}'@'%'`);
  await admin.end();
});

function endpoint(
  options: Record<string, unknown>,
  properties: Record<string, unknown> = {},
): ResolvedEndpointT {
  return {
    type: 'mysql',
    linkedService: 'my1',
    properties: { ...SERVER, database: db, ...properties },
    options,
  };
}

function ctx(signal = new AbortController().signal): ConnectorContext {
  return { signal, allowedRoots: [] };
}

function attempt(taskIndex: number, signal = new AbortController().signal): AttemptContext {
  return { signal, allowedRoots: [], taskId: `t${taskIndex}`, attemptId: 'a1', taskIndex };
}

async function only(objects: AsyncIterable<SourceObject>): Promise<SourceObject> {
  const all: SourceObject[] = [];
  for await (const o of objects) all.push(o);
  assert.equal(all.length, 1);
  const [object] = all;
  assert.ok(object);
  return object;
}

async function text(object: SourceObject): Promise<string> {
  const chunks: Buffer[] = [];
  for await (const chunk of object.stream) chunks.push(chunk as Buffer);
  return Buffer.concat(chunks).toString('utf8');
}

async function rejectsWith(
  promise: Promise<unknown>,
  code: FerryError['code'],
  message?: RegExp,
): Promise<FerryError> {
  try {
    await promise;
  } catch (err) {
    assert.ok(err instanceof FerryError, `expected a FerryError, got ${String(err)}`);
    assert.equal(err.code, code, err.message);
    if (message) assert.match(err.message, message);
    return err;
  }
  assert.fail(`expected ${code}`);
}

/** Reads every partition (column k only) and returns the keys seen, checking rows() on the way. */
async function readKeys(source: ResolvedEndpointT, partitions: PartitionT[]): Promise<number[]> {
  const keys: number[] = [];
  for (const [index, partition] of partitions.entries()) {
    const object = await only(mysqlSource.read(source, partition, attempt(index)));
    assert.equal(object.name, `part-${String(index).padStart(5, '0')}.csv`);
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

/** Connections other than the admin's running a statement that contains `fragment`. */
async function running(fragment: string): Promise<number> {
  const [rows] = await admin.query<mysql.RowDataPacket[]>(
    `SELECT COUNT(*) AS n FROM information_schema.PROCESSLIST WHERE ID <> CONNECTION_ID() AND INSTR(INFO, ?) > 0`,
    [fragment],
  );
  return Number(rows[0]?.n ?? 0);
}

/** Polls a condition the server reaches on its own schedule (a query ending), up to a deadline. */
async function eventually(check: () => Promise<boolean>, what: string, deadlineMs = 5000): Promise<void> {
  const until = Date.now() + deadlineMs;
  while (!(await check())) {
    if (Date.now() > until) assert.fail(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
}

const everyKey = Array.from({ length: ROWS }, (_, i) => i + 1);

describe('mysql plan and read', () => {
  it('reads a whole table as CSV like PostgreSQL would: quoting, NULLs, exact numbers, dates, bytes', async () => {
    const source = endpoint({ table: `${db}.kinds` });
    assert.deepEqual(await mysqlSource.plan(source, ctx()), [{ kind: 'whole' }]);
    const object = await only(mysqlSource.read(source, { kind: 'whole' }, attempt(3)));
    assert.equal(object.name, 'part-00003.csv');
    assert.equal(object.rows(), undefined);
    assert.equal(
      await text(object),
      [
        'k,note,big,dec38,d,dt,ts,bin,f',
        '1,"he said ""hi"", then left",18446744073709551615,1234567890123456789012345678.1234567890,2024-02-29,2024-02-29 23:59:59.123456,2024-01-01 00:00:00,\\x00ff41,0.1',
        '2,"two\nlines",0,-0.0000000001,,,,\\x,-1.5',
        '3,héllo ✓ 日本 🚢,,,,,,,',
        '4,"",,,,,,,',
        '',
      ].join('\n'),
    );
    assert.equal(object.rows(), 4);
  });

  it('reads chosen columns of a table in the linked service database', async () => {
    const object = await only(
      mysqlSource.read(endpoint({ table: 'orders', columns: ['k', 'note'] }), { kind: 'whole' }, attempt(0)),
    );
    const csv = await text(object);
    assert.ok(csv.startsWith('k,note\n1,row 1\n2,row 2\n'), csv.slice(0, 40));
    assert.equal(object.rows(), ROWS);
  });

  for (const column of ['id', 'amount', 'score', 'at', 'day', 'ts']) {
    it(`splits on ${column} into ranges that cover every row exactly once, NULLs included`, async () => {
      const source = endpoint({
        table: `${db}.orders`,
        columns: ['k'],
        partitionColumn: column,
        partitions: 8,
      });
      const partitions = await mysqlSource.plan(source, ctx());
      checkRangeShape(partitions, column, 8);
      assert.deepEqual(await readKeys(source, partitions), everyKey);
    });
  }

  it('writes bounds as checked literals, never as free text', () => {
    const id = { name: 'id', columnType: 'bigint(20)', kind: 'integer' as const };
    assert.equal(
      rangeSql(id, { kind: 'range', column: 'id', lo: '10', hi: '20', includeNulls: false }),
      '`id` >= 10 AND `id` < 20',
    );
    assert.equal(
      rangeSql(id, { kind: 'range', column: 'id', lo: null, hi: '10', includeNulls: true }),
      '(`id` < 10 OR `id` IS NULL)',
    );
    const at = { name: 'at', columnType: 'datetime(6)', kind: 'datetime' as const };
    assert.equal(
      rangeSql(at, {
        kind: 'range',
        column: 'at',
        lo: '2024-01-01 00:00:00.000001',
        hi: null,
        includeNulls: false,
      }),
      "`at` >= '2024-01-01 00:00:00.000001'",
    );
    assert.throws(() => boundLiteral('integer', '1; DROP TABLE x'), /not a integer bound/);
    assert.throws(() => boundLiteral('datetime', "2024-01-01' OR '1"), FerryError);
    assert.equal(formatMicros(-1n), '1969-12-31 23:59:59.999999');
    assert.equal(formatMicros(1_700_000_000_123_456n), '2023-11-14 22:13:20.123456');
  });

  it('drops duplicate bounds: 3 distinct values into 8 partitions make no empty-width ranges', async () => {
    const source = endpoint({ table: `${db}.tiny`, columns: ['k'], partitionColumn: 'v', partitions: 8 });
    const partitions = await mysqlSource.plan(source, ctx());
    checkRangeShape(partitions, 'v', 3);
    assert.deepEqual(await readKeys(source, partitions), [1, 2, 3, 4]);
  });

  it('plans one whole partition for an empty table, a single value, or partitions: 1', async () => {
    for (const options of [
      { table: `${db}.empty`, partitionColumn: 'v' },
      { table: `${db}.same`, partitionColumn: 'v' },
      { table: `${db}.orders`, partitionColumn: 'id', partitions: 1 },
    ]) {
      assert.deepEqual(
        await mysqlSource.plan(endpoint(options), ctx()),
        [{ kind: 'whole' }],
        JSON.stringify(options),
      );
    }
    const empty = await only(
      mysqlSource.read(endpoint({ table: `${db}.empty` }), { kind: 'whole' }, attempt(0)),
    );
    assert.equal(await text(empty), 'k,v\n');
    assert.equal(empty.rows(), 0);
  });

  it('closes every connection it opened', async () => {
    const source = endpoint({ table: `${db}.tiny`, columns: ['k'], partitionColumn: 'v' });
    await readKeys(source, await mysqlSource.plan(source, ctx()));
    await eventually(async () => {
      const [rows] = await admin.query<mysql.RowDataPacket[]>(
        `SELECT COUNT(*) AS n FROM information_schema.PROCESSLIST WHERE ID <> CONNECTION_ID() AND DB = ?`,
        [db],
      );
      return Number(rows[0]?.n) === 0;
    }, 'connections to close');
  });
});

describe('mysql errors', () => {
  it('reports a missing table, column or database as store_object_missing', async () => {
    const err = await rejectsWith(
      mysqlSource.plan(endpoint({ table: `${db}.orderz` }), ctx()),
      'store_object_missing',
    );
    assert.equal(err.message, `mysql "my1": table ${db}.orderz does not exist (plan)`);
    assert.equal(err.retryable, false);
    await rejectsWith(
      mysqlSource.plan(endpoint({ table: `${db}.orders`, columns: ['k', 'nope'] }), ctx()),
      'store_object_missing',
      /column nope of table .* does not exist \(plan\)/,
    );
    // Reading without planning: the server itself reports the column, through the stream.
    const object = await only(
      mysqlSource.read(endpoint({ table: `${db}.orders`, columns: ['nope'] }), { kind: 'whole' }, attempt(0)),
    );
    await rejectsWith(text(object), 'store_object_missing', /Unknown column 'nope'.* \(read\)$/);
    await rejectsWith(
      mysqlSource.plan(endpoint({ table: 'orders' }, { database: `nodb_${suffix}` }), ctx()),
      'store_object_missing',
      /Unknown database 'nodb_.*' \(connect\)/,
    );
  });

  it('reports a wrong password as store_auth, not retryable, and never shows the password', async () => {
    await admin.query(`CREATE USER '${user}'@'%' IDENTIFIED BY 'right-${suffix}'`);
    const password = `wrong-${suffix}-secret`;
    const err = await rejectsWith(
      mysqlSource.plan(endpoint({ table: 'orders' }, { user, password }), ctx()),
      'store_auth',
    );
    assert.equal(err.retryable, false);
    assert.ok(!err.message.includes(password));
    assert.match(err.message, /^mysql "my1": Access denied for user .* \(connect\)$/);
  });

  it('reports an unreachable server as store_unreachable, retryable', async () => {
    const err = await rejectsWith(
      mysqlSource.plan(endpoint({ table: 'x' }, { port: 1, password: 'hunter22' }), ctx()),
      'store_unreachable',
    );
    assert.equal(err.retryable, true);
    assert.equal(err.message, 'mysql "my1": cannot reach 127.0.0.1:1: connection refused (connect)');
  });

  it('refuses odd names and unsupported partition columns as bad_request', async () => {
    for (const table of ['a.b.c', 'x`y', '.orders', 'orders ', "o'rders", 'or\\ders']) {
      await rejectsWith(mysqlSource.plan(endpoint({ table }), ctx()), 'bad_request');
    }
    await rejectsWith(
      mysqlSource.plan(endpoint({ table: `${db}.orders`, partitionColumn: 'note' }), ctx()),
      'bad_request',
      /partitionColumn note has type text/,
    );
    await rejectsWith(
      mysqlSource.plan(endpoint({ table: `${db}.orders`, partitions: 4 }), ctx()),
      'bad_request',
      /needs a partitionColumn/,
    );
  });

  it('decides retries by error code and scrubs the password', () => {
    const scope = { linkedService: 'my1', address: 'db:3306', password: 'sekret-pass' };
    const cases: [string, FerryError['code'], boolean][] = [
      ['ECONNREFUSED', 'store_unreachable', true],
      ['ENOTFOUND', 'store_unreachable', true],
      ['ETIMEDOUT', 'store_unreachable', true],
      ['ER_ACCESS_DENIED_ERROR', 'store_auth', false],
      ['ER_DBACCESS_DENIED_ERROR', 'store_auth', false],
      ['ER_NO_SUCH_TABLE', 'store_object_missing', false],
      ['ER_BAD_DB_ERROR', 'store_object_missing', false],
      ['ER_BAD_FIELD_ERROR', 'store_object_missing', false],
      ['ER_LOCK_WAIT_TIMEOUT', 'store_error', true],
      ['ER_LOCK_DEADLOCK', 'store_error', true],
      ['PROTOCOL_CONNECTION_LOST', 'store_error', true],
      ['ER_PARSE_ERROR', 'store_error', false],
    ];
    for (const [code, ferryCode, retryable] of cases) {
      const cause = Object.assign(new Error('failed near sekret-pass'), { code });
      const err = mysqlError(cause, scope, 'read');
      assert.deepEqual([err.code, err.retryable], [ferryCode, retryable], code);
      assert.ok(!err.message.includes('sekret-pass'), err.message);
      assert.match(err.message, /^mysql "my1": .* \(read\)$/);
    }
  });
});

describe('mysql cancellation', () => {
  it('stops a read of a big table when the signal aborts, and the server ends the query', async () => {
    const controller = new AbortController();
    const object = await only(
      mysqlSource.read(endpoint({ table: `${db}.big` }), { kind: 'whole' }, attempt(0, controller.signal)),
    );
    const statement = `FROM \`${db}\`.\`big\``;
    try {
      await once(object.stream, 'data');
      object.stream.pause();
      assert.equal(await running(statement), 1);
    } finally {
      controller.abort();
    }
    await rejectsWith(finished(object.stream), 'cancelled');
    assert.equal(object.rows(), undefined);
    await eventually(async () => (await running(statement)) === 0, 'the query to end');
  });

  it('does not start when the signal has already aborted', async () => {
    const controller = new AbortController();
    controller.abort();
    await rejectsWith(
      mysqlSource.plan(endpoint({ table: `${db}.orders` }), ctx(controller.signal)),
      'cancelled',
    );
  });
});

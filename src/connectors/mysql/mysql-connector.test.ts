import assert from 'node:assert/strict';
import { once } from 'node:events';
import { finished } from 'node:stream/promises';
import { after, before, describe, it } from 'node:test';
import mysql from 'mysql2/promise';
import { FerryError } from '../../common/errors.ts';
import type { PartitionT, ResolvedEndpointT, WatermarkWindowT } from '../../protocol/task.ts';
import type { AttemptContext, PlanContext, SourceObject } from '../connector.ts';
import { rangeSql } from './mysql-conditions.ts';
import { boundLiteral } from './mysql-config.ts';
import { mysqlSource } from './mysql-connector.ts';
import { mysqlError } from './mysql-errors.ts';
import { formatMicros } from './mysql-planner.ts';
import { shortestFloat32 } from './mysql-reader.ts';
import { rejectsWith } from '../../../test/helpers/rejects-with.ts';
import { UploadBudget } from '../../common/upload-budget.ts';

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
    CREATE TABLE every (
      k int PRIMARY KEY, flag bool, ti tinyint, tiu tinyint unsigned, si smallint, siu smallint unsigned,
      mi mediumint NOT NULL DEFAULT 0, i int, iu int unsigned, bi bigint, biu bigint unsigned, f float,
      d double, dec12 decimal(12,2), c char(3), vc varchar(10), tt tinytext, tx text, e enum('a','b'),
      st set('x','y'), bn binary(2), vb varbinary(4), bl blob, bt bit(3), dt date, tm time(3),
      dtm datetime(6), ts timestamp(6) NULL, y year, j json, u uuid, ip inet6);
    INSERT INTO every VALUES
      (1, TRUE, -128, 255, -32768, 65535, -8388608, -2147483648, 4294967295, -9223372036854775808,
       18446744073709551615, 1.2345678, 1e-1 + 2e-1, -1234567890.12, 'ab', 'x,y', '', 'line\\nnext', 'b',
       'x,y', X'00FF', X'', X'DEADBEEF', b'101', '2024-02-29', '-838:59:59.000',
       '2024-02-29 23:59:59.123456', '2038-01-19 03:14:07.999999', 2024, '{"a": [1, 2]}',
       'A0EEBC99-9C0B-4EF8-BB6D-6BB9BD380A11', '::1'),
      (2, NULL, NULL, NULL, NULL, NULL, 0, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL,
       NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL),
      (3, FALSE, 0, 0, 0, 0, 0, 0, 0, 0, 0, 16777217, 1e300, 0, '', '\\\\N', '\\\\.', '"', 'a', '',
       X'0000', X'0A0D', X'00', b'0', '0000-00-00', '100:00:00', '0000-00-00 00:00:00',
       '0000-00-00 00:00:00', 0, '[]', NULL, NULL);
    CREATE TABLE flags (k int, flag tinyint(1));
    INSERT INTO flags VALUES (1, 1), (2, 0), (3, 2);
    CREATE TABLE events (id bigint PRIMARY KEY, at datetime(6) NULL, amount decimal(10,2), f float);
    CREATE TABLE nothing (id bigint PRIMARY KEY, at datetime(6));
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

function ctx(signal = new AbortController().signal, watermark: string | null = null): PlanContext {
  return { signal, allowedRoots: [], watermark };
}

function attempt(
  taskIndex: number,
  signal = new AbortController().signal,
  window?: WatermarkWindowT,
): AttemptContext {
  return {
    signal,
    allowedRoots: [],
    uploadBudget: new UploadBudget(),
    runId: 'run1',
    activity: 'act',
    taskId: `t${taskIndex}`,
    attemptId: 'a1',
    taskIndex,
    ...(window ? { window } : {}),
  };
}

async function partitions(source: ResolvedEndpointT, context = ctx()): Promise<PartitionT[]> {
  const plan = await mysqlSource.plan(source, context);
  assert.equal(plan.window, undefined);
  return plan.partitions;
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

/** Reads every partition (column k only) and returns the keys seen, checking rows() on the way. */
async function readKeys(
  source: ResolvedEndpointT,
  partitions: PartitionT[],
  window?: WatermarkWindowT,
): Promise<number[]> {
  const keys: number[] = [];
  for (const [index, partition] of partitions.entries()) {
    const object = await only(mysqlSource.read(source, partition, attempt(index, undefined, window)));
    assert.equal(object.name, `part-${String(index).padStart(5, '0')}`);
    const lines = (await text(object)).split('\n').filter((l) => l !== '');
    assert.equal(lines[0], object.columns?.[0]?.name);
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
    assert.deepEqual(await partitions(source), [{ kind: 'whole' }]);
    const object = await only(mysqlSource.read(source, { kind: 'whole' }, attempt(3)));
    assert.equal(object.name, 'part-00003');
    assert.equal(object.rows(), undefined);
    assert.equal(
      await text(object),
      [
        'k,note,big,dec38,d,dt,ts,bin,f',
        '1,"he said ""hi"", then left",18446744073709551615,1234567890123456789012345678.1234567890,2024-02-29,2024-02-29 23:59:59.123456,2024-01-01 00:00:00+00,\\x00ff41,0.1',
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
      const planned = await partitions(source);
      checkRangeShape(planned, column, 8);
      assert.deepEqual(await readKeys(source, planned), everyKey);
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
    const planned = await partitions(source);
    checkRangeShape(planned, 'v', 3);
    assert.deepEqual(await readKeys(source, planned), [1, 2, 3, 4]);
  });

  it('plans one whole partition for an empty table, a single value, or partitions: 1', async () => {
    for (const options of [
      { table: `${db}.empty`, partitionColumn: 'v' },
      { table: `${db}.same`, partitionColumn: 'v' },
      { table: `${db}.orders`, partitionColumn: 'id', partitions: 1 },
    ]) {
      assert.deepEqual(await partitions(endpoint(options)), [{ kind: 'whole' }], JSON.stringify(options));
    }
    const empty = await only(
      mysqlSource.read(endpoint({ table: `${db}.empty` }), { kind: 'whole' }, attempt(0)),
    );
    assert.equal(await text(empty), 'k,v\n');
    assert.equal(empty.rows(), 0);
  });

  it('closes every connection it opened', async () => {
    const source = endpoint({ table: `${db}.tiny`, columns: ['k'], partitionColumn: 'v' });
    await readKeys(source, await partitions(source));
    await eventually(async () => {
      const [rows] = await admin.query<mysql.RowDataPacket[]>(
        `SELECT COUNT(*) AS n FROM information_schema.PROCESSLIST WHERE ID <> CONNECTION_ID() AND DB = ?`,
        [db],
      );
      return Number(rows[0]?.n) === 0;
    }, 'connections to close');
  });
});

describe('mysql columns and canonical values', () => {
  it('describes every column with its logical type, nullability and native type', async () => {
    const columns = await mysqlSource.describe?.(endpoint({ table: 'every' }), ctx());
    assert.ok(columns);
    assert.deepEqual(
      columns.map((c) => [c.name, c.type, c.nullable]),
      [
        ['k', 'int32', false],
        ['flag', 'boolean', true],
        ['ti', 'int16', true],
        ['tiu', 'int16', true],
        ['si', 'int16', true],
        ['siu', 'int32', true],
        ['mi', 'int32', false],
        ['i', 'int32', true],
        ['iu', 'int64', true],
        ['bi', 'int64', true],
        ['biu', 'decimal', true],
        ['f', 'float32', true],
        ['d', 'float64', true],
        ['dec12', 'decimal', true],
        ['c', 'text', true],
        ['vc', 'text', true],
        ['tt', 'text', true],
        ['tx', 'text', true],
        ['e', 'text', true],
        ['st', 'text', true],
        ['bn', 'binary', true],
        ['vb', 'binary', true],
        ['bl', 'binary', true],
        ['bt', 'binary', true],
        ['dt', 'date', true],
        ['tm', 'time', true],
        ['dtm', 'timestamp', true],
        ['ts', 'timestamptz', true],
        ['y', 'int16', true],
        ['j', 'json', true],
        ['u', 'uuid', true],
        ['ip', 'text', true],
      ],
    );
    const byName = new Map(columns.map((c) => [c.name, c]));
    assert.deepEqual(
      ['biu', 'dec12'].map((n) => [byName.get(n)?.precision, byName.get(n)?.scale]),
      [
        [20, 0],
        [12, 2],
      ],
    );
    assert.equal(byName.get('biu')?.nativeType, 'bigint(20) unsigned');
    assert.equal(byName.get('e')?.nativeType, "enum('a','b')");
    // Chosen columns come in the order asked, spelled as the table spells them.
    const some = await mysqlSource.describe?.(endpoint({ table: 'every', columns: ['TS', 'k'] }), ctx());
    assert.deepEqual(
      some?.map((c) => [c.name, c.type]),
      [
        ['ts', 'timestamptz'],
        ['k', 'int32'],
      ],
    );
  });

  it('renders every type as canonical text, and the object carries the columns', async () => {
    const object = await only(mysqlSource.read(endpoint({ table: 'every' }), { kind: 'whole' }, attempt(0)));
    assert.deepEqual(
      object.columns?.map((c) => c.type),
      (await mysqlSource.describe?.(endpoint({ table: 'every' }), ctx()))?.map((c) => c.type),
    );
    const lines = (await text(object)).split('\n');
    assert.equal(lines[0], object.columns?.map((c) => c.name).join(','));
    assert.equal(
      lines.slice(1).join('\n'),
      [
        '1,t,-128,255,-32768,65535,-8388608,-2147483648,4294967295,-9223372036854775808,18446744073709551615,' +
          '1.2345678,0.30000000000000004,-1234567890.12,ab,"x,y","","line\nnext",b,"x,y",\\x00ff,\\x,\\xdeadbeef,' +
          '\\x05,2024-02-29,-838:59:59.000,2024-02-29 23:59:59.123456,2038-01-19 03:14:07.999999+00,2024,' +
          '"{""a"": [1, 2]}",a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11,::1',
        // NULL is an empty field without quotes, in every type.
        `2,,,,,,0${','.repeat(25)}`,
        // Zero dates pass as they are; float32 as its shortest digits; `\.` is quoted for COPY.
        '3,f,0,0,0,0,0,0,0,0,0,16777216,1e300,0.00,"",\\N,"\\.","""",a,"",\\x0000,\\x0a0d,\\x00,\\x00,' +
          '0000-00-00,100:00:00.000,0000-00-00 00:00:00.000000,0000-00-00 00:00:00.000000+00,0000,[],,',
        '',
      ].join('\n'),
    );
    assert.equal(object.rows(), 3);
  });

  it('fails a TINYINT(1) that holds something other than 0 or 1, naming the column and the value', async () => {
    const object = await only(mysqlSource.read(endpoint({ table: 'flags' }), { kind: 'whole' }, attempt(0)));
    const err = await rejectsWith(
      text(object),
      'store_error',
      /^mysql "my1": column flag of .*\.flags is tinyint\(1\), read as a boolean, but holds 2; .* \(read\)$/,
    );
    assert.equal(err.retryable, false);
  });

  it('writes float32 values as the shortest digits that read back as the same float', () => {
    for (const [wide, short] of [
      ['0.10000000149011612', '0.1'],
      ['1.2345677614212036', '1.2345678'],
      ['16777216', '16777216'],
      ['3.4028234663852886e38', '3.4028235e+38'],
      ['-1.401298464324817e-45', '-1e-45'],
      ['0', '0'],
    ] as const) {
      assert.equal(shortestFloat32(wide), short, wide);
      assert.equal(Math.fround(Number(short)), Math.fround(Number(wide)));
    }
  });
});

describe('mysql incremental copy', () => {
  const source = (options: Record<string, unknown> = {}): ResolvedEndpointT =>
    endpoint({ table: 'events', columns: ['id'], watermarkColumn: 'at', ...options });
  const addEvents = async (from: number, to: number): Promise<void> => {
    await admin.query(
      `INSERT INTO events SELECT g, TIMESTAMP('2025-01-01') + INTERVAL g MINUTE + INTERVAL 250 MICROSECOND,
              g / 4, g FROM seq WHERE g BETWEEN ? AND ?`,
      [from, to],
    );
  };
  const range = (from: number, to: number): number[] =>
    Array.from({ length: to - from + 1 }, (_, i) => from + i);

  it('copies everything on the first run, then only newer rows, then nothing', async () => {
    await addEvents(1, 100);
    // A row without a watermark belongs to no window.
    await admin.query(`INSERT INTO events VALUES (100000, NULL, 1, 1)`);
    const first = await mysqlSource.plan(source(), ctx());
    assert.deepEqual(first, {
      partitions: [{ kind: 'whole' }],
      window: { column: 'at', after: null, upTo: '2025-01-01 01:40:00.000250' },
    });
    // Rows written after the plan belong to the next run, whenever this run's tasks read.
    await addEvents(101, 130);
    assert.deepEqual(await readKeys(source(), first.partitions, first.window), range(1, 100));

    const second = await mysqlSource.plan(source(), ctx(undefined, first.window?.upTo ?? null));
    assert.deepEqual(second.window, {
      column: 'at',
      after: '2025-01-01 01:40:00.000250',
      upTo: '2025-01-01 02:10:00.000250',
    });
    assert.deepEqual(await readKeys(source(), second.partitions, second.window), range(101, 130));

    const third = await mysqlSource.plan(source(), ctx(undefined, second.window?.upTo ?? null));
    assert.deepEqual(third, {
      partitions: [],
      window: { column: 'at', after: '2025-01-01 02:10:00.000250', upTo: '2025-01-01 02:10:00.000250' },
    });
  });

  it('splits a window into ranges found within it', async () => {
    const options = { partitionColumn: 'id', partitions: 4 };
    const plan = await mysqlSource.plan(source(options), ctx(undefined, '2025-01-01 00:50:00.000250'));
    assert.equal(plan.window?.after, '2025-01-01 00:50:00.000250');
    checkRangeShape(plan.partitions, 'id', 4);
    // The cut points lie between the window's ids (51..130), not the table's (1..100000).
    const cuts = plan.partitions.flatMap((p) => (p.kind === 'range' && p.hi !== null ? [Number(p.hi)] : []));
    assert.ok(
      cuts.every((c) => c > 51 && c <= 130),
      cuts.join(','),
    );
    assert.deepEqual(await readKeys(source(options), plan.partitions, plan.window), range(51, 130));
  });

  it('takes integer and decimal watermarks, and an empty table plans nothing', async () => {
    const byId = await mysqlSource.plan(source({ watermarkColumn: 'id' }), ctx(undefined, '129'));
    assert.deepEqual(byId.window, { column: 'id', after: '129', upTo: '100000' });
    assert.deepEqual(
      await readKeys(source({ watermarkColumn: 'id' }), byId.partitions, byId.window),
      [130, 100000],
    );
    const byAmount = await mysqlSource.plan(source({ watermarkColumn: 'amount' }), ctx(undefined, '32.25'));
    assert.deepEqual(byAmount.window, { column: 'amount', after: '32.25', upTo: '32.50' });
    assert.deepEqual(
      await readKeys(source({ watermarkColumn: 'amount' }), byAmount.partitions, byAmount.window),
      [130],
    );
    assert.deepEqual(await mysqlSource.plan(endpoint({ table: 'nothing', watermarkColumn: 'at' }), ctx()), {
      partitions: [],
      window: { column: 'at', after: null, upTo: null },
    });
  });

  it('refuses a float watermark, a watermark that is not a value of its column, and a task without its window', async () => {
    await rejectsWith(
      mysqlSource.plan(source({ watermarkColumn: 'f' }), ctx()),
      'bad_request',
      /^mysql "my1": watermarkColumn f has type float; it must be an integer, decimal, date/,
    );
    await rejectsWith(
      mysqlSource.plan(source(), ctx(undefined, "2025-01-01' OR '1")),
      'bad_request',
      /is not a datetime bound/,
    );
    await rejectsWith(
      only(mysqlSource.read(source(), { kind: 'whole' }, attempt(0))),
      'internal',
      /came without its watermark window/,
    );
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
    // Reading without planning: the read checks the columns again before it queries.
    await rejectsWith(
      only(
        mysqlSource.read(
          endpoint({ table: `${db}.orders`, columns: ['nope'] }),
          { kind: 'whole' },
          attempt(0),
        ),
      ),
      'store_object_missing',
      /^mysql "my1": column nope of table .*\.orders does not exist \(read\)$/,
    );
    await rejectsWith(
      only(mysqlSource.read(endpoint({ table: `${db}.gone` }), { kind: 'whole' }, attempt(0))),
      'store_object_missing',
      /^mysql "my1": table .*\.gone does not exist \(read\)$/,
    );
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
      // The header comes first, maybe before the server has the query: wait until it runs.
      await eventually(async () => (await running(statement)) === 1, 'the query to run');
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

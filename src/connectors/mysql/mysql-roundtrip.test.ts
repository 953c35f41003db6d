/**
 * MySQL into MySQL through canonical CSV, for every column type MariaDB has: the MySQL source reads,
 * the MySQL sink loads (LOAD DATA LOCAL, and INSERT batches), and the two tables must hold the same
 * values: CHECKSUM TABLE when the target is a copy of the source's definition, an ordered digest of
 * every value when the sink created the table from the columns.
 */
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { after, before, describe, it } from 'node:test';
import { Transform } from 'node:stream';
import mysql from 'mysql2/promise';
import type { ResolvedEndpointT } from '../../protocol/task.ts';
import type { ActivityContext, AttemptContext } from '../connector.ts';
import { mysqlSink, mysqlSource } from './mysql-connector.ts';
import { openMysqlWriter } from './mysql-writer.ts';
import { UploadBudget } from '../../common/upload-budget.ts';

const SERVER = { host: '127.0.0.1', port: 3306, user: 'root' };
const suffix = `${process.pid}_${randomBytes(3).toString('hex')}`;
const db = `ferry_rt_${suffix}`;
const BIG_TEXT_BYTES = 10 * 1024 * 1024;
const ROWS = 5000;
let admin: mysql.Connection;

const COLUMNS = `
  k int PRIMARY KEY, flag bool, ti tinyint, tiu tinyint unsigned, si smallint, siu smallint unsigned,
  mi mediumint, miu mediumint unsigned, i int, iu int unsigned, bi bigint, biu bigint unsigned,
  f float, d double, dec65 decimal(65,30), dec0 decimal(10,0),
  c char(10), vc varchar(100), tt tinytext, tx text, mt mediumtext, lt longtext,
  e enum('a','b','c'), st set('x','y','z'),
  bn binary(4), vb varbinary(300), tb tinyblob, bl blob, mb mediumblob, lb longblob, bt bit(10),
  dt date, tm time(6), dtm datetime(6), dtm0 datetime, ts timestamp(6) NULL, y year,
  j json, u uuid`;

before(async () => {
  admin = await mysql.createConnection({ ...SERVER, database: 'test', multipleStatements: true });
  await admin.query(`CREATE DATABASE ${db} CHARACTER SET utf8mb4; USE ${db}; SET time_zone = '+00:00'`);
  await admin.query(`SET SESSION sql_mode = 'STRICT_ALL_TABLES', max_recursive_iterations = 100000`);
  await admin.query(`CREATE TABLE src (${COLUMNS}) DEFAULT CHARSET = utf8mb4`);
  await admin.query(`CREATE TABLE empty_src (${COLUMNS}) DEFAULT CHARSET = utf8mb4`);
  await admin.query(`CREATE TABLE bytes (b tinyint unsigned PRIMARY KEY)`);
  await admin.query(
    `INSERT INTO bytes WITH RECURSIVE s(b) AS (SELECT 0 UNION ALL SELECT b + 1 FROM s WHERE b < 255) SELECT b FROM s`,
  );
  // Every byte value, in order, as one string.
  const allBytes = `(SELECT GROUP_CONCAT(CHAR(b) ORDER BY b SEPARATOR '') FROM bytes)`;
  await admin.query(
    `INSERT INTO src VALUES (1, TRUE, -128, 255, -32768, 65535, -8388608, 16777215, -2147483648, 4294967295,
       -9223372036854775808, 18446744073709551615, -3.40282e38, -1.7976931348623157e308,
       '-99999999999999999999999999999999999.999999999999999999999999999999', -9999999999,
       'emoji 🚢', 'naïve "quoted", comma\\ttab\\nnewline\\\\backslash\\rcr', '', '\\\\N', '\\\\.',
       REPEAT('ü🚢x,"\\n', ?), 'c', 'x,z',
       X'00010203', ${allBytes}, X'', REPEAT(${allBytes}, 4), ${allBytes}, REPEAT(${allBytes}, 1000), b'1111111111',
       '1000-01-01', '-838:59:59.000000', '9999-12-31 23:59:59.999999', '1000-01-01 00:00:00',
       '1970-01-01 00:00:01.000000', 1901, '{"k": [1, "two", null, {"ü": "🚢"}], "n": 1.5e300}',
       'a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11')`,
    [BIG_TEXT_BYTES / 10],
  );
  await admin.query(`INSERT INTO src (k) VALUES (2)`);
  await admin.query(
    `INSERT INTO src VALUES (3, FALSE, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, '', '', '', '', '', '', 'a', '',
       X'00000000', X'', X'', X'', X'', X'', b'0', '0000-00-00', '838:59:59.999999', '0000-00-00 00:00:00',
       '2038-01-19 03:14:07', '2038-01-19 03:14:07.999999', 0, '[]', '00000000-0000-0000-0000-000000000000')`,
  );
  await admin.query(
    `INSERT INTO src (k, flag, i, bi, f, d, dec65, vc, tx, bl, dtm, ts, j, e, st)
     WITH RECURSIVE s(g) AS (SELECT 10 UNION ALL SELECT g + 1 FROM s WHERE g < ?)
     SELECT g, g % 2, g * 7919, g * 1000000007, g / 7, g / 3, g / 13, CONCAT('row ', g, ' ✓'),
            IF(g % 5 = 0, NULL, REPEAT('t', g % 300)), UNHEX(SHA2(g, 256)),
            TIMESTAMP('2000-01-01') + INTERVAL g * 37 MINUTE + INTERVAL g MICROSECOND,
            TIMESTAMP('2001-01-01') + INTERVAL g HOUR, JSON_OBJECT('g', g), ELT(1 + g % 3, 'a', 'b', 'c'),
            IF(g % 4 = 0, '', 'y')
       FROM s`,
    [ROWS + 9],
  );
});

after(async () => {
  await admin.query(`DROP DATABASE IF EXISTS ${db}`);
  await admin.end();
});

function endpoint(options: Record<string, unknown>): ResolvedEndpointT {
  return { type: 'mysql', linkedService: 'my1', properties: { ...SERVER, database: db }, options };
}

/** A copy the way the node runs one: plan, describe, prepare; read and load each partition; finalize. */
async function copy(
  source: ResolvedEndpointT,
  sink: ResolvedEndpointT,
  runId: string,
  localInfile: boolean,
): Promise<number> {
  const signal = new AbortController().signal;
  const activity: ActivityContext = { signal, allowedRoots: [], runId, activity: 'copy' };
  const plan = await mysqlSource.plan(source, { ...activity, watermark: null });
  const columns = await mysqlSource.describe?.(source, activity);
  const { finalize } = (await mysqlSink.prepare?.(sink, columns, activity)) ?? { finalize: false };
  let total = 0;
  for (const [taskIndex, partition] of plan.partitions.entries()) {
    const attempt: AttemptContext = {
      ...activity,
      taskId: `t${taskIndex}`,
      attemptId: 'a1',
      taskIndex,
      uploadBudget: new UploadBudget(),
    };
    const writer = await openMysqlWriter(sink, attempt, { localInfile });
    try {
      for await (const object of mysqlSource.read(source, partition, attempt)) {
        let bytes = 0;
        const counted = object.stream.pipe(
          new Transform({
            transform(chunk: Buffer, _encoding, callback) {
              bytes += chunk.length;
              callback(null, chunk);
            },
          }),
        );
        const staged = await writer.stage({
          name: object.name,
          stream: counted,
          ...(object.columns ? { columns: object.columns } : {}),
        });
        assert.equal(staged.rows, object.rows(), 'rows read and written');
        assert.equal(staged.bytes, bytes, 'bytes read and written');
        total += staged.rows ?? 0;
      }
      await writer.commit();
    } catch (err) {
      await writer.abort();
      throw err;
    }
  }
  if (finalize) await mysqlSink.finalize?.(sink, activity);
  return total;
}

async function checksum(table: string): Promise<string> {
  const [rows] = await admin.query(`CHECKSUM TABLE ${table}`);
  return String((rows as { Checksum: unknown }[])[0]?.Checksum);
}

/** Every value of every row, in key order, as text the column types cannot blur, digested. */
async function digest(table: string): Promise<{ n: number; md5: string }> {
  const [columns] = await admin.query(
    `SELECT COLUMN_NAME AS name, DATA_TYPE AS type FROM information_schema.COLUMNS
      WHERE TABLE_SCHEMA = ? AND TABLE_NAME = ? ORDER BY ORDINAL_POSITION`,
    [db, table],
  );
  const values = (columns as { name: string; type: string }[]).map(({ name, type }) => {
    const value = type === 'float' ? `CAST(CAST(\`${name}\` AS DOUBLE) AS CHAR)` : `\`${name}\``;
    return `IFNULL(HEX(${value}), 'N')`;
  });
  await admin.query(`SET SESSION group_concat_max_len = 1073741824`);
  const [rows] = await admin.query(
    `SELECT COUNT(*) AS n, MD5(GROUP_CONCAT(MD5(CONCAT_WS('|', ${values.join(', ')})) ORDER BY k SEPARATOR '')) AS md5 FROM ${table}`,
  );
  const row = (rows as { n: number; md5: string | null }[])[0];
  return { n: Number(row?.n), md5: row?.md5 ?? '' };
}

describe('mysql to mysql round trip', () => {
  for (const localInfile of [true, false]) {
    const path = localInfile ? 'LOAD DATA' : 'INSERT';

    it(`keeps every value of every type into a table of the same definition (${path})`, async () => {
      const target = `same_${localInfile}`;
      await admin.query(`CREATE TABLE ${target} LIKE src`);
      const source = endpoint({ table: 'src', partitionColumn: 'k', partitions: 4 });
      assert.equal(
        await copy(source, endpoint({ table: target }), `rt-same-${localInfile}`, localInfile),
        ROWS + 3,
      );
      assert.deepEqual(await digest(target), await digest('src'));
      assert.equal(await checksum(target), await checksum('src'));
      const [[big]] = (await admin.query(
        `SELECT LENGTH(lt) AS n, LENGTH(lb) AS b FROM ${target} WHERE k = 1`,
      )) as [{ n: number; b: number }[], unknown];
      assert.deepEqual(big, { n: BIG_TEXT_BYTES, b: 256_000 });
    });

    it(`keeps every value into a table it creates from the columns (${path})`, async () => {
      const target = `created_${localInfile}`;
      const source = endpoint({ table: 'src' });
      await copy(
        source,
        endpoint({ table: target, mode: 'create' }),
        `rt-create-${localInfile}`,
        localInfile,
      );
      assert.deepEqual(await digest(target), await digest('src'));
      // MySQL types come through as they were; MariaDB's JSON (a checked LONGTEXT) is made JSON again.
      const [types] = await admin.query(
        `SELECT a.COLUMN_NAME AS name FROM information_schema.COLUMNS a JOIN information_schema.COLUMNS b
            ON b.TABLE_SCHEMA = a.TABLE_SCHEMA AND b.TABLE_NAME = 'src' AND b.COLUMN_NAME = a.COLUMN_NAME
         WHERE a.TABLE_SCHEMA = ? AND a.TABLE_NAME = ? AND a.COLUMN_TYPE <> b.COLUMN_TYPE ORDER BY a.ORDINAL_POSITION`,
        [db, target],
      );
      assert.deepEqual(
        (types as { name: string }[]).map((t) => t.name),
        ['tx'], // TEXT becomes LONGTEXT: PostgreSQL's text has no 64 KiB limit
      );
    });

    it(`copies an empty table (${path})`, async () => {
      const target = `empty_${localInfile}`;
      await admin.query(`CREATE TABLE ${target} LIKE empty_src`);
      assert.equal(
        await copy(
          endpoint({ table: 'empty_src' }),
          endpoint({ table: target }),
          `rt-empty-${localInfile}`,
          localInfile,
        ),
        0,
      );
      assert.equal(await checksum(target), await checksum('empty_src'));
    });
  }
});

import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { after, before, describe, it } from 'node:test';
import { PassThrough, Readable } from 'node:stream';
import mysql from 'mysql2/promise';
import type { FerryError } from '../../common/errors.ts';
import type { ResolvedEndpointT } from '../../protocol/task.ts';
import type { ActivityContext, AttemptContext, SinkWriter, StageInput } from '../connector.ts';
import type { TableColumn } from '../../tables/table-columns.ts';
import { mysqlSink } from './mysql-connector.ts';
import { openMysqlWriter, type MysqlWriter, type WriterTuning } from './mysql-writer.ts';
import { rejectsWith } from '../../../test/helpers/rejects-with.ts';
import { UploadBudget } from '../../common/upload-budget.ts';

// MariaDB at 127.0.0.1:3306, user root without a password. Everything this file creates lives in its
// own database (and one user), with a random suffix, dropped at the end.
const SERVER = { host: '127.0.0.1', port: 3306, user: 'root' };
const suffix = `${process.pid}_${randomBytes(3).toString('hex')}`;
const db = `ferry_w_${suffix}`;
const user = `ferry_wu_${suffix}`;
let admin: mysql.Connection;

before(async () => {
  admin = await mysql.createConnection({ ...SERVER, database: 'test', multipleStatements: true });
  await admin.query(`CREATE DATABASE ${db}`);
  await admin.query(`USE ${db}`);
});

after(async () => {
  await admin.query(`DROP USER IF EXISTS '${user}'@'%'`);
  // A test that failed half-way may leave a transaction open, whose locks would hold up DROP DATABASE.
  for (const writer of writers) await writer.abort().catch(() => undefined);
  const [open] = await admin.query(
    `SELECT ID AS id FROM information_schema.PROCESSLIST WHERE DB = ? AND ID <> CONNECTION_ID()`,
    [db],
  );
  for (const { id } of open as { id: number }[])
    await admin.query(`KILL ${Number(id)}`).catch(() => undefined);
  await admin.query(`DROP DATABASE IF EXISTS ${db}`);
  await admin.end();
});

const writers: SinkWriter[] = [];

/** Opens a writer, remembered so that after() can roll back whatever a failed test left open. */
async function open(
  endpoint: ResolvedEndpointT,
  ctx: AttemptContext,
  tuning?: WriterTuning,
): Promise<SinkWriter> {
  const writer = await openMysqlWriter(endpoint, ctx, tuning);
  writers.push(writer);
  return writer;
}

function sink(options: Record<string, unknown>, properties: Record<string, unknown> = {}): ResolvedEndpointT {
  return {
    type: 'mysql',
    linkedService: 'my1',
    properties: { ...SERVER, database: db, ...properties },
    options,
  };
}

function activity(runId: string, signal = new AbortController().signal): ActivityContext {
  return { signal, allowedRoots: [], runId, activity: 'load' };
}

function attempt(
  runId: string,
  taskIndex: number,
  attemptId = 'a1',
  signal = new AbortController().signal,
): AttemptContext {
  return {
    ...activity(runId, signal),
    taskId: `t${taskIndex}`,
    attemptId,
    taskIndex,
    uploadBudget: new UploadBudget(),
  };
}

const KV: TableColumn[] = [
  { name: 'k', type: 'int32', nullable: false },
  { name: 'v', type: 'text', nullable: true },
];

/** Canonical CSV of rows k = from..to, v = `v<k>`. */
function kvCsv(from: number, to: number): string {
  let csv = 'k,v\n';
  for (let k = from; k <= to; k++) csv += `${k},v${k}\n`;
  return csv;
}

function object(csv: string, columns = KV, name = 'part-00000'): StageInput {
  return { name, stream: Readable.from([Buffer.from(csv)]), columns };
}

function sha256(text: string): string {
  return createHash('sha256').update(text).digest('hex');
}

async function rows<T = Record<string, unknown>>(sql: string, params: unknown[] = []): Promise<T[]> {
  const [result] = await admin.query(sql, params);
  return result as T[];
}

async function count(table: string): Promise<number> {
  const [row] = await rows<{ n: number }>(`SELECT COUNT(*) AS n FROM ${table}`);
  return Number(row?.n);
}

async function ledger(runId: string): Promise<{ task_index: number; rows: number; bytes: number }[]> {
  return rows(`SELECT task_index, \`rows\`, bytes FROM ferry_ledger WHERE run_id = ? ORDER BY task_index`, [
    runId,
  ]);
}

/** Polls a condition the server reaches on its own schedule, up to a deadline. */
async function eventually(check: () => Promise<boolean>, what: string, deadlineMs = 30_000): Promise<void> {
  const until = Date.now() + deadlineMs;
  while (!(await check())) {
    if (Date.now() > until) {
      const busy = await rows(
        `SELECT COMMAND, STATE, INFO FROM information_schema.PROCESSLIST WHERE DB = ?`,
        [db],
      );
      assert.fail(`timed out waiting for ${what}; the server is doing ${JSON.stringify(busy)}`);
    }
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
}

/**
 * Statements of this database's connections in flight whose text matches `pattern`. (Not
 * INNODB_TRX: its cache is cut short when another test's big transaction fills it.)
 */
async function running(pattern: string): Promise<number> {
  const [row] = await rows<{ n: number }>(
    `SELECT COUNT(*) AS n FROM information_schema.PROCESSLIST WHERE ID <> CONNECTION_ID() AND DB = ? AND INFO LIKE ?`,
    [db, pattern],
  );
  return Number(row?.n);
}

async function connectionsTo(): Promise<number> {
  const [row] = await rows<{ n: number }>(
    `SELECT COUNT(*) AS n FROM information_schema.PROCESSLIST WHERE ID <> CONNECTION_ID() AND DB = ?`,
    [db],
  );
  return Number(row?.n);
}

let tables = 0;
/** A fresh `(k int, v varchar(20))` table (with a primary key when asked), prepared for append as a plan would. */
async function kvTable(options: { key?: boolean; rows?: number } = {}): Promise<string> {
  const name = `kv${++tables}`;
  await admin.query(
    `CREATE TABLE ${name} (k int ${options.key ? 'PRIMARY KEY' : 'NOT NULL'}, v varchar(20))`,
  );
  if (options.rows) {
    await admin.query(
      `INSERT INTO ${name} WITH RECURSIVE s(k) AS (SELECT 1 UNION ALL SELECT k + 1 FROM s WHERE k < ?) SELECT k, 'old' FROM s`,
      [options.rows],
    );
  }
  await mysqlSink.prepare?.(sink({ table: name }), undefined, activity('setup'));
  return name;
}

describe('mysql sink: append', () => {
  it('loads a task in one transaction with its ledger row, and reports bytes, checksum and rows', async () => {
    const table = await kvTable();
    assert.deepEqual(await mysqlSink.prepare?.(sink({ table }), KV, activity('r-append')), {
      finalize: false,
    });
    const writer = await open(sink({ table }), attempt('r-append', 3));
    const csv = kvCsv(1, 1000);
    const staged = await writer.stage(object(csv, KV, 'part-00003'));
    assert.deepEqual(staged, {
      name: 'part-00003',
      bytes: Buffer.byteLength(csv),
      sha256: sha256(csv),
      rows: 1000,
    });
    // Nothing is visible to anyone else before the commit: neither the rows nor the ledger row.
    assert.equal(await count(table), 0);
    assert.deepEqual(await ledger('r-append'), []);
    await writer.commit();
    assert.equal(await count(table), 1000);
    assert.deepEqual(await ledger('r-append'), [
      { task_index: 3, rows: 1000, bytes: Buffer.byteLength(csv) },
    ]);
    const [sample] = await rows(`SELECT k, v FROM ${table} WHERE k = 17`);
    assert.deepEqual(sample, { k: 17, v: 'v17' });
    await writer.commit(); // a second commit is a no-op
    await writer.abort(); // and an abort after the commit too
    assert.equal(await count(table), 1000);
    await eventually(async () => (await connectionsTo()) === 0, 'the connection to close');
  });

  it('abort leaves nothing, and can be called twice', async () => {
    const table = await kvTable();
    const writer = await open(sink({ table }), attempt('r-abort', 0));
    await writer.stage(object(kvCsv(1, 50)));
    await writer.abort();
    await writer.abort();
    assert.equal(await count(table), 0);
    assert.deepEqual(await ledger('r-abort'), []);
    await rejectsWith(writer.commit(), 'conflict', /commit after the attempt aborted/);
    // The task's next attempt loads it.
    const retry = await open(sink({ table }), attempt('r-abort', 0, 'a2'));
    assert.equal((await retry.stage(object(kvCsv(1, 50)))).rows, 50);
    await retry.commit();
    assert.equal(await count(table), 50);
  });

  it('a retried attempt after a commit loads nothing and reports the committed figures', async () => {
    const table = await kvTable();
    const csv = kvCsv(1, 200);
    const first = await open(sink({ table }), attempt('r-retry', 0));
    await first.stage(object(csv));
    await first.commit();
    const again = await open(sink({ table }), attempt('r-retry', 0, 'a2'));
    const input = object(csv);
    let ended = false;
    input.stream.on('end', () => (ended = true));
    assert.deepEqual(await again.stage(input), {
      name: 'part-00000',
      bytes: Buffer.byteLength(csv),
      sha256: sha256(csv),
      rows: 200,
    });
    assert.ok(ended, 'the stream was read to its end');
    await again.commit();
    assert.equal(await count(table), 200);
    // Another task of the same run is not mistaken for it.
    const other = await open(sink({ table }), attempt('r-retry', 1));
    assert.equal((await other.stage(object(kvCsv(201, 210)))).rows, 10);
    await other.commit();
    assert.equal(await count(table), 210);
  });

  it('two attempts at once make one copy: the second waits on the ledger key, then reports the first', async () => {
    const table = await kvTable();
    const csv = kvCsv(1, 300);
    const a = await open(sink({ table }), attempt('r-race', 0, 'a1'));
    const b = await open(sink({ table }), attempt('r-race', 0, 'a2'));
    await a.stage(object(csv));
    const bStaged = b.stage(object(csv));
    // The second attempt's ledger insert waits for the first one's transaction to end.
    await eventually(
      async () => (await running('INSERT INTO %ferry_ledger%')) === 1,
      'the second attempt to wait on the ledger row',
    );
    await a.commit();
    assert.deepEqual(await bStaged, {
      name: 'part-00000',
      bytes: Buffer.byteLength(csv),
      sha256: sha256(csv),
      rows: 300,
    });
    await b.commit();
    assert.equal(await count(table), 300);
    assert.deepEqual(await ledger('r-race'), [{ task_index: 0, rows: 300, bytes: Buffer.byteLength(csv) }]);
  });

  it('two attempts at once into a keyed table: the second meets the first one rows, then reports it', async () => {
    const table = await kvTable({ key: true });
    const csv = kvCsv(1, 300);
    const a = await open(sink({ table }), attempt('r-race-key', 0, 'a1'));
    const b = await open(sink({ table }), attempt('r-race-key', 0, 'a2'));
    await a.stage(object(csv));
    const bStaged = b.stage(object(csv));
    // The second load waits on the first one's uncommitted keys, then finds them duplicates.
    await eventually(async () => (await running(`LOAD DATA %${table}%`)) === 1, 'the second attempt to load');
    await a.commit();
    assert.equal((await bStaged).rows, 300);
    await b.commit();
    assert.equal(await count(table), 300);
  });

  it('a failed attempt that committed nothing does not stop the retry; a duplicate key fails the task', async () => {
    const table = await kvTable({ key: true });
    await admin.query(`INSERT INTO ${table} VALUES (5, 'there')`);
    const writer = await open(sink({ table }), attempt('r-dup', 0));
    const err = await rejectsWith(
      writer.stage(object(kvCsv(1, 10))),
      'store_error',
      /^mysql "my1": Duplicate entry '5' for key 'PRIMARY' \(stage part-00000 into ferry_w_.*\.kv\d+\)$/,
    );
    assert.equal(err.retryable, false);
    await writer.abort();
    assert.equal(await count(table), 1);
  });

  it('stages several objects of one task under one ledger row; a retry reports them once', async () => {
    const table = await kvTable();
    const writer = await open(sink({ table }), attempt('r-multi', 2));
    const one = kvCsv(1, 10);
    const two = kvCsv(11, 30);
    assert.equal((await writer.stage(object(one, KV, 'a.csv'))).rows, 10);
    assert.equal((await writer.stage(object(two, KV, 'b.csv'))).rows, 20);
    await writer.commit();
    assert.deepEqual(await ledger('r-multi'), [{ task_index: 2, rows: 30, bytes: one.length + two.length }]);
    const retry = await open(sink({ table }), attempt('r-multi', 2, 'a2'));
    const first = await retry.stage(object(one, KV, 'a.csv'));
    const second = await retry.stage(object(two, KV, 'b.csv'));
    assert.deepEqual(
      [first.rows, first.bytes, second.rows, second.bytes],
      [30, one.length + two.length, 0, 0],
    );
    await retry.commit();
    assert.equal(await count(table), 30);
  });

  it('loads the source columns into differently named target columns', async () => {
    const table = await kvTable();
    await admin.query(`ALTER TABLE ${table} ADD COLUMN extra int DEFAULT 7`);
    const options = { table, columns: ['k', 'v'] };
    const columns: TableColumn[] = [
      { name: 'id', type: 'int64', nullable: false },
      { name: 'label', type: 'text', nullable: true },
    ];
    await mysqlSink.prepare?.(sink(options), columns, activity('r-rename'));
    await rejectsWith(
      mysqlSink.prepare?.(sink({ table, columns: ['k', 'v', 'extra'] }), columns, activity('r-rename')) ??
        Promise.resolve(),
      'bad_request',
      /^mysql "my1": the sink lists 3 columns for 2 source columns \(id, label\)$/,
    );
    const writer = await open(sink(options), attempt('r-rename', 0));
    await writer.stage(object('id,label\n1,one\n2,\n3,""\n', columns));
    await writer.commit();
    assert.deepEqual(await rows(`SELECT k, v, extra FROM ${table} ORDER BY k`), [
      { k: 1, v: 'one', extra: 7 },
      { k: 2, v: null, extra: 7 },
      { k: 3, v: '', extra: 7 },
    ]);
  });
});

describe('mysql sink: ledger retention', () => {
  it('trims ledger rows older than 30 days at prepare, and keeps the newer ones', async () => {
    const table = await kvTable();
    await admin.query(
      `INSERT INTO ferry_ledger (run_id, activity, task_index, \`rows\`, bytes, committed_at)
       VALUES ('r-old', 'a', 0, 1, 1, NOW(6) - INTERVAL 31 DAY), ('r-recent', 'a', 0, 1, 1, NOW(6) - INTERVAL 29 DAY)`,
    );
    await mysqlSink.prepare?.(sink({ table }), undefined, activity('r-trim'));
    assert.deepEqual(await ledger('r-old'), []);
    assert.deepEqual(await ledger('r-recent'), [{ task_index: 0, rows: 1, bytes: 1 }]);
  });
});

describe('mysql sink: text into a binary column', () => {
  for (const localInfile of [true, false]) {
    it(`takes \\x hex text as the bytes it spells, other text as its UTF-8 bytes (${localInfile ? 'LOAD DATA' : 'INSERT'})`, async () => {
      const table = await kvTable();
      await admin.query(`ALTER TABLE ${table} MODIFY v blob`);
      // Binary read from CSV or JSON lines arrives as text (docs/type-mapping.md).
      const columns: TableColumn[] = [
        { name: 'k', type: 'int64', nullable: false },
        { name: 'v', type: 'text', nullable: true },
      ];
      const writer = await open(sink({ table }), attempt(`r-bin-text-${localInfile}`, 0), { localInfile });
      await writer.stage(object('k,v\n1,\\x00ff0a5c\n2,héllo\n3,\n4,""\n5,\\x\n', columns));
      await writer.commit();
      assert.deepEqual(await rows(`SELECT k, HEX(v) AS h FROM ${table} ORDER BY k`), [
        { k: 1, h: '00FF0A5C' },
        { k: 2, h: Buffer.from('héllo').toString('hex').toUpperCase() },
        { k: 3, h: null },
        { k: 4, h: '' },
        { k: 5, h: '' },
      ]);
    });
  }
});

describe('mysql sink: create and overwrite', () => {
  const columns: TableColumn[] = [
    { name: 'id', type: 'int64', nullable: false },
    { name: 'flag', type: 'boolean', nullable: true },
    { name: 'amount', type: 'decimal', precision: 12, scale: 2, nullable: true },
    { name: 'huge', type: 'decimal', nullable: true },
    { name: 'note', type: 'text', nullable: true, nativeType: 'text' },
    { name: 'code', type: 'text', nullable: true, nativeType: 'varchar(8)' },
    { name: 'pgtext', type: 'text', nullable: true, nativeType: 'character varying(40)' },
    { name: 'bytes', type: 'binary', nullable: true },
    { name: 'at', type: 'timestamptz', nullable: true },
    { name: 'local', type: 'timestamp', nullable: true },
    { name: 'real4', type: 'float32', nullable: true, nativeType: 'real' },
    { name: 'doc', type: 'json', nullable: true },
    { name: 'uid', type: 'uuid', nullable: true },
  ];

  it('creates a missing table from the source columns, once', async () => {
    const options = { table: 'created', mode: 'create' };
    assert.deepEqual(await mysqlSink.prepare?.(sink(options), columns, activity('r-create')), {
      finalize: false,
    });
    assert.deepEqual(await mysqlSink.prepare?.(sink(options), columns, activity('r-create')), {
      finalize: false,
    });
    const types = await rows<{ name: string; type: string; nullable: string }>(
      `SELECT COLUMN_NAME AS name, COLUMN_TYPE AS type, IS_NULLABLE AS nullable FROM information_schema.COLUMNS
        WHERE TABLE_SCHEMA = ? AND TABLE_NAME = 'created' ORDER BY ORDINAL_POSITION`,
      [db],
    );
    assert.deepEqual(
      types.map((t) => `${t.name} ${t.type} ${t.nullable}`),
      [
        'id bigint(20) NO',
        'flag tinyint(1) YES',
        'amount decimal(12,2) YES',
        'huge decimal(65,30) YES',
        'note longtext YES', // a bare `text` may be PostgreSQL's, which has no 64 KiB limit
        'code varchar(8) YES', // a MySQL type of the same logical type is kept
        'pgtext longtext YES', // another store's type is not
        'bytes longblob YES',
        'at datetime(6) YES',
        'local datetime(6) YES',
        'real4 float YES', // MySQL's REAL is a double: not the same logical type
        'doc longtext YES', // MariaDB's JSON
        'uid char(36) YES',
      ],
    );
    const writer = await open(sink(options), attempt('r-create', 0));
    const csv =
      'id,flag,amount,huge,note,code,pgtext,bytes,at,local,real4,doc,uid\n' +
      '1,t,-12.50,12345678901234567890.123456789,"a\tb\\c",xy,é,\\xdeadbeef,2024-02-29 13:45:00.5+00,2024-02-29 13:45:00,0.1,"{""a"":1}",a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11\n' +
      '2,f,,,,,,\\x,,,,,\n';
    await writer.stage(object(csv, columns));
    await writer.commit();
    assert.deepEqual(
      await rows(
        `SELECT id, flag, amount, huge, note, code, HEX(bytes) AS bytes, at, local, real4, doc, uid FROM created ORDER BY id`,
      ),
      [
        {
          id: 1,
          flag: 1,
          amount: '-12.50',
          huge: '12345678901234567890.123456789000000000000000000000',
          note: 'a\tb\\c',
          code: 'xy',
          bytes: 'DEADBEEF',
          at: new Date('2024-02-29T13:45:00.500Z'),
          local: new Date('2024-02-29T13:45:00.000Z'),
          real4: 0.1,
          doc: { a: 1 }, // mysql2 parses what MariaDB flags as JSON
          uid: 'a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11',
        },
        {
          id: 2,
          flag: 0,
          amount: null,
          huge: null,
          note: null,
          code: null,
          bytes: '',
          at: null,
          local: null,
          real4: null,
          doc: null,
          uid: null,
        },
      ],
    );
  });

  it('refuses append to a missing table, and create without columns to create it from', async () => {
    const err = await rejectsWith(
      mysqlSink.prepare?.(sink({ table: 'x' }), columns, activity('r-missing')) ?? Promise.resolve(),
      'store_object_missing',
    );
    assert.equal(err.message, `mysql "my1": table "${db}.x" doesn't exist (prepare)`);
    assert.match(err.hint ?? '', /mode: create/);
    await rejectsWith(
      mysqlSink.prepare?.(sink({ table: 'x', mode: 'create' }), undefined, activity('r-missing')) ??
        Promise.resolve(),
      'bad_request',
      /does not describe its columns/,
    );
    // A target column the load needs is checked before any task runs.
    const table = await kvTable();
    await rejectsWith(
      mysqlSink.prepare?.(sink({ table, columns: ['k', 'nope'] }), KV, activity('r-missing')) ??
        Promise.resolve(),
      'store_object_missing',
      /^mysql "my1": column nope of table .*\.kv\d+ does not exist \(prepare\)$/,
    );
    await admin.query(`CREATE TABLE myisam (k int, v text) ENGINE = MyISAM`);
    await rejectsWith(
      mysqlSink.prepare?.(sink({ table: 'myisam' }), KV, activity('r-missing')) ?? Promise.resolve(),
      'bad_request',
      /table ".*\.myisam" uses MyISAM, which cannot roll back a failed load/,
    );
  });

  it('overwrite: loads into a staging table, swaps in finalize, drops it, and finalize twice changes nothing', async () => {
    const table = await kvTable({ rows: 20 });
    const options = { table, mode: 'overwrite' };
    // A staging table another run left behind is dropped; other tables are not.
    await admin.query(`CREATE TABLE ${table}__ferry_0badc0de LIKE ${table}`);
    await admin.query(`CREATE TABLE ${table}__ferry_keep (k int)`);
    assert.deepEqual(await mysqlSink.prepare?.(sink(options), KV, activity('r-ovw')), { finalize: true });
    const staging = await rows<{ name: string }>(
      `SELECT TABLE_NAME AS name FROM information_schema.TABLES WHERE TABLE_SCHEMA = ? AND TABLE_NAME LIKE '${table}\\_\\_ferry%' ORDER BY 1`,
      [db],
    );
    assert.equal(staging.length, 2);
    assert.ok(staging.some((s) => s.name === `${table}__ferry_keep`));
    const stagingName = staging.find((s) => s.name !== `${table}__ferry_keep`)?.name ?? '';
    assert.match(stagingName, /__ferry_[0-9a-f]{8}$/);

    for (const [index, [from, to]] of [
      [1, 100],
      [101, 250],
    ].entries()) {
      const writer = await open(sink(options), attempt('r-ovw', index));
      await writer.stage(object(kvCsv(from ?? 0, to ?? 0)));
      await writer.commit();
    }
    // Until the finalize, the table keeps its old rows.
    assert.deepEqual(await rows(`SELECT COUNT(*) AS n, MIN(v) AS v FROM ${table}`), [{ n: 20, v: 'old' }]);
    assert.equal(await count(stagingName), 250);
    await mysqlSink.finalize?.(sink(options), activity('r-ovw'));
    assert.deepEqual(await rows(`SELECT COUNT(*) AS n, SUM(k) AS s FROM ${table}`), [{ n: 250, s: '31375' }]);
    assert.deepEqual(await rows(`SHOW TABLES LIKE '${stagingName}'`), []);
    assert.deepEqual(
      (await ledger('r-ovw')).map((l) => [l.task_index, l.rows]),
      [
        [-1, 250],
        [0, 100],
        [1, 150],
      ],
    );

    // A finalize that crashed after its commit left the staging table: the retry only drops it.
    await admin.query(`CREATE TABLE ${stagingName} LIKE ${table}`);
    await admin.query(`INSERT INTO ${stagingName} VALUES (1, 'stale')`);
    await mysqlSink.finalize?.(sink(options), activity('r-ovw'));
    assert.deepEqual(await rows(`SELECT COUNT(*) AS n, SUM(k) AS s FROM ${table}`), [{ n: 250, s: '31375' }]);
    assert.deepEqual(await rows(`SHOW TABLES LIKE '${stagingName}'`), []);
  });

  it('two finalizes at once swap once', async () => {
    const table = await kvTable({ rows: 5 });
    const options = { table, mode: 'overwrite' };
    await mysqlSink.prepare?.(sink(options), KV, activity('r-fin2'));
    const writer = await open(sink(options), attempt('r-fin2', 0));
    await writer.stage(object(kvCsv(1, 40)));
    await writer.commit();
    await Promise.all([
      mysqlSink.finalize?.(sink(options), activity('r-fin2')),
      mysqlSink.finalize?.(sink(options), activity('r-fin2')),
    ]);
    assert.equal(await count(table), 40);
  });

  it('overwrite creates a missing target from the columns; a missing staging table fails the copy', async () => {
    const options = { table: 'fresh', mode: 'overwrite' };
    await mysqlSink.prepare?.(sink(options), KV, activity('r-fresh'));
    const writer = await open(sink(options), attempt('r-fresh', 0));
    await writer.stage(object(kvCsv(1, 3)));
    await writer.commit();
    await mysqlSink.finalize?.(sink(options), activity('r-fresh'));
    assert.equal(await count('fresh'), 3);
    // Another run's prepare dropped this run's staging table: the copy fails by name.
    const lost = await open(sink(options), attempt('r-fresh', 1));
    await rejectsWith(
      lost.stage(object(kvCsv(1, 3))),
      'store_object_missing',
      /__ferry_[0-9a-f]{8}' doesn't exist \(stage part-00000 into /,
    );
    await lost.abort();
  });
});

describe('mysql sink: bad values fail the task', () => {
  const cases: [string, string, TableColumn[], RegExp, FerryError['code']][] = [
    [
      'too long for the column',
      'k,v\n1,ok\n2,' + 'x'.repeat(21) + '\n',
      KV,
      /Data too long for column 'v' at row 2|Data truncated for column 'v' at row 2/,
      'store_error',
    ],
    [
      'not a date',
      'k,t\n1,2024-02-29 00:00:00\n2,2023-02-29 00:00:00\n',
      [KV[0] as TableColumn, { name: 't', type: 'timestamp', nullable: true }],
      /(Incorrect datetime value: '2023-02-29 00:00:00' for column .*`t`|Data truncated for column 't') at row 2/,
      'store_error',
    ],
    [
      'a decimal rounded',
      'k,d\n1,1.005\n',
      [KV[0] as TableColumn, { name: 'd', type: 'decimal', nullable: true }],
      /Data truncated for column 'd' at row 1/,
      'store_error',
    ],
    [
      'a fraction into an integer column',
      'k,v\n1,ok\n1.5,ok\n',
      [{ name: 'k', type: 'decimal', nullable: false }, KV[1] as TableColumn],
      /row 2, column k: "1.5" is not an integer, as column k \(int\(11\)\) needs/,
      'bad_request',
    ],
    [
      'fractional seconds cut',
      'k,t\n1,2024-01-01 00:00:00.000\n2,2024-01-01 00:00:00.5\n',
      [KV[0] as TableColumn, { name: 't', type: 'timestamp', nullable: true }],
      /row 2, column t: "2024-01-01 00:00:00.5" has more fractional seconds than column t \(datetime\) keeps/,
      'bad_request',
    ],
    [
      'not canonical binary',
      'k,v\n1,\\xzz\n',
      [KV[0] as TableColumn, { name: 'v', type: 'binary', nullable: true }],
      /row 1, column v: "\\\\xzz" is not binary/,
      'bad_request',
    ],
    [
      'not a boolean',
      'k,v\n1,yes\n',
      [KV[0] as TableColumn, { name: 'v', type: 'boolean', nullable: true }],
      /row 1, column v: "yes" is not a boolean/,
      'bad_request',
    ],
    [
      'not UTC',
      'k,v\n1,2024-01-01 00:00:00+02\n',
      [KV[0] as TableColumn, { name: 'v', type: 'timestamptz', nullable: true }],
      /is not a UTC timestamp/,
      'bad_request',
    ],
    [
      'a header that is not the columns',
      'k,w\n1,a\n',
      KV,
      /the header row \(k, w\) does not name the columns \(k, v\)/,
      'bad_request',
    ],
    ['a short row', 'k,v\n1\n', KV, /not canonical CSV|row 1 has 1 fields/, 'bad_request'],
  ];
  for (const localInfile of [true, false]) {
    for (const [what, csv, columns, message, code] of cases) {
      it(`${what} (${localInfile ? 'LOAD DATA' : 'INSERT'})`, async () => {
        const table = await kvTable();
        await admin.query(`ALTER TABLE ${table} ADD COLUMN d decimal(5,2), ADD COLUMN t datetime`);
        const writer = await open(sink({ table }), attempt(`r-bad-${what}-${localInfile}`, 0), {
          localInfile,
        });
        const err = await rejectsWith(writer.stage(object(csv, columns)), code, message);
        assert.equal(err.retryable, false);
        assert.match(err.message, /^mysql "my1": .*\(stage part-00000 into ferry_w_.*\)$/);
        await writer.abort();
        assert.equal(await count(table), 0);
      });
    }
  }
});

describe('mysql sink: without LOAD DATA LOCAL', () => {
  it('falls back to INSERT batches when the server refuses LOAD DATA LOCAL', async () => {
    const table = await kvTable({ key: true });
    await admin.query(`ALTER TABLE ${table} MODIFY v mediumtext`);
    const writer = (await open(sink({ table }), attempt('r-insert', 0), {
      localInfile: false,
    })) as MysqlWriter;
    assert.equal(writer.usesLoadData, true, 'the server allows it, so the writer tries');
    // 20 000 rows of 500 bytes: several 4 MiB batches.
    const pad = 'é'.repeat(250);
    let csv = 'k,v\n';
    for (let k = 1; k <= 20_000; k++) csv += `${k},${pad}\n`;
    const staged = await writer.stage(object(csv));
    assert.equal(writer.usesLoadData, false, 'refused, it fell back');
    assert.deepEqual(staged, {
      name: 'part-00000',
      bytes: Buffer.byteLength(csv),
      sha256: sha256(csv),
      rows: 20_000,
    });
    assert.equal(await count(table), 0);
    await writer.commit();
    assert.deepEqual(await rows(`SELECT COUNT(*) AS n, SUM(CHAR_LENGTH(v)) AS c FROM ${table}`), [
      { n: 20_000, c: '5000000' },
    ]);
  });
});

describe('mysql sink: cancellation and connection errors', () => {
  it('cancels a load mid-stream: the stage fails as cancelled and nothing is left', async () => {
    const table = await kvTable();
    const controller = new AbortController();
    const writer = await open(sink({ table }), attempt('r-cancel', 0, 'a1', controller.signal));
    const stream = new PassThrough();
    stream.write('k,v\n');
    for (let k = 1; k <= 1000; k++) stream.write(`${k},v\n`);
    const staging = writer.stage({ name: 'part-00000', stream, columns: KV });
    await eventually(async () => (await running('LOAD DATA%')) === 1, 'the load to start');
    controller.abort();
    await rejectsWith(staging, 'cancelled', /^mysql "my1": cancelled \(stage part-00000 into /);
    await writer.abort();
    assert.ok(stream.destroyed, 'the input stream was released');
    await eventually(async () => (await connectionsTo()) === 0, 'the connection to go');
    assert.equal(await count(table), 0);
  });

  it('reports an unreachable server, an unknown database and a wrong password by name', async () => {
    const unreachable = await rejectsWith(
      open(sink({ table: 'x' }, { port: 1, password: 'hunter22' }), attempt('r-err', 0)),
      'store_unreachable',
    );
    assert.equal(unreachable.message, 'mysql "my1": cannot reach 127.0.0.1:1: connection refused (connect)');
    assert.equal(unreachable.retryable, true);
    await rejectsWith(
      mysqlSink.prepare?.(sink({ table: 'x' }, { database: `nodb_${suffix}` }), KV, activity('r-err')) ??
        Promise.resolve(),
      'store_object_missing',
      /^mysql "my1": Unknown database 'nodb_.*' \(connect\)$/,
    );
    await admin.query(`CREATE USER '${user}'@'%' IDENTIFIED BY 'right-${suffix}'`);
    const password = `wrong-${suffix}-secret`;
    const denied = await rejectsWith(
      open(sink({ table: 'x' }, { user, password }), attempt('r-err', 0)),
      'store_auth',
      /^mysql "my1": Access denied for user .* \(connect\)$/,
    );
    assert.equal(denied.retryable, false);
    assert.ok(!denied.message.includes(password));
  });
});

/**
 * The decode wiring in the task executor (src/node/task-executor.ts): a files source whose options
 * set a format yields tables, named after the files without their extensions, which a files sink
 * then writes in its own format; without a format, files still copy as-is. Runs real copy tasks
 * between filesystem folders.
 */
import assert from 'node:assert/strict';
import { appendFileSync } from 'node:fs';
import { mkdir, mkdtemp, readdir, readFile, readlink, realpath, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { gunzipSync, gzipSync } from 'node:zlib';
import { after, before, describe, it } from 'node:test';
import pg from 'pg';
import { FerryError } from '../common/errors.ts';
import { executeTask, type TaskAttempt } from '../node/task-executor.ts';
import type { CopyResultT, TaskSpecT } from '../protocol/task.ts';
import type { TableColumn } from '../tables/table-columns.ts';
import { TYPED_COLUMNS, TYPED_ROWS, canonical, encode, format, generated } from './test-tables.ts';
import { UploadBudget } from '../common/upload-budget.ts';

let base: string;
let tasks = 0;

before(async () => {
  base = await realpath(await mkdtemp(path.join(tmpdir(), 'ferry-files-tables-')));
  loadCtx.allowedRoots = [base];
});

after(async () => {
  await rm(base, { recursive: true, force: true });
});

/** A load task's node context, its spec as the attempt a worker runs, and hooks that ignore progress. */
const loadCtx = {
  signal: new AbortController().signal,
  allowedRoots: [] as string[],
  uploadBudget: new UploadBudget(),
};
const asAttempt = (spec: TaskSpecT): TaskAttempt => ({ attemptId: 'a1', taskId: 'load1', spec });
const hooks = { onProgress: () => {}, beforeCommit: async () => {} };

async function folderWith(files: Record<string, Buffer | string>): Promise<string> {
  const dir = path.join(base, `in-${++tasks}`);
  await mkdir(dir);
  for (const [name, bytes] of Object.entries(files)) await writeFile(path.join(dir, name), bytes);
  return dir;
}

async function copy(
  source: string,
  files: string[],
  sourceOptions: Record<string, unknown>,
  sinkOptions: Record<string, unknown>,
  task: { maxBytesPerSecond?: number; onProgress?: (rows: number, bytes: number) => void } = {},
): Promise<{ result: CopyResultT; out: string }> {
  const out = path.join(base, `out-${++tasks}`);
  await mkdir(out);
  const spec: TaskSpecT = {
    ...(task.maxBytesPerSecond !== undefined ? { maxBytesPerSecond: task.maxBytesPerSecond } : {}),
    runId: 'run1',
    activity: 'copy',
    source: { type: 'filesystem', linkedService: 'in', properties: { root: source }, options: sourceOptions },
    sink: { type: 'filesystem', linkedService: 'out', properties: { root: out }, options: sinkOptions },
    work: {
      kind: 'copy',
      index: 0,
      partition: { kind: 'files', files: files.map((p) => ({ path: p, size: 0 })) },
    },
  };
  const result = await executeTask(
    { attemptId: 'a1', taskId: `task${tasks}`, spec },
    { signal: new AbortController().signal, allowedRoots: [base], uploadBudget: new UploadBudget() },
    { onProgress: task.onProgress ?? (() => {}), beforeCommit: async () => {} },
  );
  assert.ok(result.kind === 'copy');
  return { result, out };
}

describe('files read as tables by the copy task', () => {
  it('reads CSV files in their dialect and writes each as a Parquet file named after it', async () => {
    const semicolons = 'id;name\n1;"a;b"\n2;\\N\n3;""\n';
    const source = await folderWith({ 'orders.csv': semicolons, 'more.csv.gz': gzipSync('id;name\n4;d\n') });
    const { result, out } = await copy(
      source,
      ['orders.csv', 'more.csv.gz'],
      { format: 'csv', csv: { delimiter: ';', nullValue: '\\N' } },
      { format: 'parquet' },
    );
    assert.deepEqual(
      result.outputs.map((o) => [o.name, o.rows]),
      [
        ['orders.parquet', 3],
        ['more.parquet', 1],
      ],
    );
    assert.equal(result.rowsRead, 4);
    assert.equal(result.rowsWritten, 4);
    assert.equal(result.converted, true);
    assert.equal(result.bytesRead, Buffer.byteLength(semicolons) + gzipSync('id;name\n4;d\n').length);
    assert.deepEqual((await readdir(out)).sort(), ['more.parquet', 'orders.parquet']);

    // Read the written Parquet back as a table: the NULL stayed NULL, the empty string empty.
    const back = await copy(out, ['orders.parquet'], { format: 'parquet' }, { format: 'csv' });
    assert.equal(await readFile(path.join(back.out, 'orders.csv'), 'utf8'), 'id,name\n1,a;b\n2,\n3,""\n');
  });

  it('reads Parquet files and writes JSON lines, gzipped, with every type in its JSON form', async () => {
    const { bytes } = await encode(
      TYPED_COLUMNS,
      canonical(TYPED_COLUMNS, TYPED_ROWS),
      format({ format: 'parquet' }),
    );
    const source = await folderWith({ 'typed.parquet': bytes });
    const { result, out } = await copy(
      source,
      ['typed.parquet'],
      { format: 'parquet' },
      { format: 'jsonl', compression: 'gzip' },
    );
    assert.deepEqual(
      result.outputs.map((o) => [o.name, o.rows]),
      [['typed.jsonl.gz', TYPED_ROWS.length]],
    );
    const lines = gunzipSync(await readFile(path.join(out, 'typed.jsonl.gz'))).toString();
    assert.match(lines, /^\{"i16":-32768,"i32":-2147483648,"i64":-9223372036854775808,/);
    assert.match(
      lines,
      /"dec":"-9999999999\.99","big":"-1234567890123456789012345678901234567890\.0123456789"/,
    );
  });

  it('loads a JSON lines file into a PostgreSQL table, NULL and empty string kept apart', async () => {
    const schema = `ferry_fmt_${Math.random().toString(36).slice(2, 10)}`;
    const client = new pg.Client({ host: '127.0.0.1', port: 5432, user: 'postgres', database: 'test' });
    await client.connect();
    try {
      await client.query(`CREATE SCHEMA ${schema}; CREATE TABLE ${schema}.events (id bigint, name text)`);
      const lines = '{"id":9223372036854775807,"name":"x"}\n{"id":2,"name":null}\n{"id":3,"name":""}\n';
      const source = await folderWith({ 'events.jsonl': lines });
      const spec = {
        runId: 'run1',
        activity: 'load',
        source: {
          type: 'filesystem',
          linkedService: 'in',
          properties: { root: source },
          options: { format: 'jsonl' },
        },
        sink: {
          type: 'postgres',
          linkedService: 'pg',
          properties: { host: '127.0.0.1', port: 5432, database: 'test', user: 'postgres' },
          options: { table: `${schema}.events` },
        },
      };
      await executeTask(asAttempt({ ...spec, work: { kind: 'plan' } }), loadCtx, hooks); // the sink's ledger
      const partition = { kind: 'files' as const, files: [{ path: 'events.jsonl', size: lines.length }] };
      const result = await executeTask(
        asAttempt({ ...spec, work: { kind: 'copy', index: 0, partition } }),
        loadCtx,
        hooks,
      );
      assert.equal(result.kind, 'copy');
      assert.deepEqual(
        [result.rowsRead, result.rowsWritten, result.outputs[0]?.name, result.converted],
        [3, 3, 'events', true],
      );
      const rows = await client.query<{ id: string; name: string | null }>(
        `SELECT id::text, name FROM ${schema}.events ORDER BY id`,
      );
      assert.deepEqual(rows.rows, [
        { id: '2', name: null },
        { id: '3', name: '' },
        { id: '9223372036854775807', name: 'x' },
      ]);
    } finally {
      await client.query(`DROP SCHEMA IF EXISTS ${schema} CASCADE`);
      await client.end();
    }
  });

  it('creates the target table from the first file that has columns, at plan time', async () => {
    const schema = `ferry_fmt_${Math.random().toString(36).slice(2, 10)}`;
    const client = new pg.Client({ host: '127.0.0.1', port: 5432, user: 'postgres', database: 'test' });
    await client.connect();
    await client.query(`CREATE SCHEMA ${schema}`);
    /** Plans the load (the table created then), then copies every planned partition. */
    const load = async (
      files: Record<string, Buffer | string>,
      options: Record<string, unknown>,
      table: string,
    ): Promise<void> => {
      // A run of its own per load: the sink's ledger knows a task by its run, activity and index.
      const runId = `run-${table}`;
      const spec = {
        runId,
        activity: 'load',
        source: {
          type: 'filesystem',
          linkedService: 'in',
          properties: { root: await folderWith(files) },
          options,
        },
        sink: {
          type: 'postgres',
          linkedService: 'pg',
          properties: { host: '127.0.0.1', port: 5432, database: 'test', user: 'postgres' },
          options: { table: `${schema}.${table}`, mode: 'create' },
        },
      };
      const plan = await executeTask(asAttempt({ ...spec, work: { kind: 'plan' } }), loadCtx, hooks);
      assert.ok(plan.kind === 'plan');
      for (const [index, partition] of plan.partitions.entries()) {
        const copied = await executeTask(
          asAttempt({ ...spec, work: { kind: 'copy', index, partition } }),
          loadCtx,
          hooks,
        );
        assert.ok(copied.kind === 'copy' && copied.rowsWritten === copied.rowsRead, JSON.stringify(copied));
      }
    };
    const described = async (table: string): Promise<string[]> =>
      (
        await client.query<{ c: string }>(
          `SELECT column_name || ' ' || data_type AS c FROM information_schema.columns
            WHERE table_schema = $1 AND table_name = $2 ORDER BY ordinal_position`,
          [schema, table],
        )
      ).rows.map((r) => r.c);
    try {
      // CSV: the header's names, every column text.
      await load({ 'a.csv': 'id,name\n1,x\n', 'b.csv': 'id,name\n2,y\n' }, { format: 'csv' }, 'from_csv');
      assert.deepEqual(await described('from_csv'), ['id text', 'name text']);
      assert.deepEqual((await client.query(`SELECT * FROM ${schema}.from_csv ORDER BY id`)).rows, [
        { id: '1', name: 'x' },
        { id: '2', name: 'y' },
      ]);
      // JSON lines: an empty first file has no columns; the next file's first line types them (a JSON
      // number is a decimal).
      await load(
        { 'a.jsonl': '', 'b.jsonl': '{"id":7,"ok":true,"at":"x"}\n' },
        { format: 'jsonl' },
        'from_jsonl',
      );
      assert.deepEqual(await described('from_jsonl'), ['id numeric', 'ok boolean', 'at text']);
      // Parquet: the file's schema.
      const { bytes } = await encode(
        TYPED_COLUMNS,
        canonical(TYPED_COLUMNS, TYPED_ROWS),
        format({ format: 'parquet' }),
      );
      await load({ 'typed.parquet': bytes }, { format: 'parquet' }, 'from_parquet');
      const types = await described('from_parquet');
      assert.deepEqual(types.slice(0, 3), ['i16 smallint', 'i32 integer', 'i64 bigint']);
      assert.ok(types.includes('dec numeric') && types.includes('tz timestamp with time zone'), types.join());
      const count = await client.query(`SELECT count(*)::int AS n FROM ${schema}.from_parquet`);
      assert.equal(count.rows[0].n, TYPED_ROWS.length);
      // No file to take columns from: the plan fails, saying why, and creates nothing.
      await assert.rejects(load({ 'a.jsonl': '' }, { format: 'jsonl' }, 'none'), (err: unknown) => {
        assert.ok(err instanceof FerryError && err.code === 'bad_request', String(err));
        assert.match(err.message, /mode create needs the source's columns/);
        return true;
      });
      assert.deepEqual(await described('none'), []);
    } finally {
      await client.query(`DROP SCHEMA IF EXISTS ${schema} CASCADE`);
      await client.end();
    }
  });

  describe("a local Parquet file, read in place through the node's descriptor of it", () => {
    const columns: TableColumn[] = [
      { name: 'n', type: 'int64', nullable: false },
      { name: 'label', type: 'text', nullable: true },
    ];
    const row = (i: number): string => `${i},label ${(i * 7919).toString(36)}\n`;
    const ROWS = 150_000;
    let bytes: Buffer;
    let expected: string;

    before(async () => {
      bytes = (await encode(columns, generated(ROWS, row, 'n,label\n').stream, format({ format: 'parquet' })))
        .bytes;
      expected = `n,label\n${Array.from({ length: ROWS }, (_, i) => row(i)).join('')}`;
      assert.ok(bytes.length > 3 * 256 * 1024, `${bytes.length} bytes: more than three reads of a stream`);
    });

    it('is counted once, whole, never streamed through the node; under a rate limit it is', async () => {
      const source = await folderWith({ 'big.parquet': bytes });
      const counted: number[] = [];
      const { result, out } = await copy(
        source,
        ['big.parquet'],
        { format: 'parquet' },
        { format: 'csv' },
        {
          onProgress: (_rows, read) => counted.push(read),
        },
      );
      assert.equal(await readFile(path.join(out, 'big.csv'), 'utf8'), expected);
      assert.equal(result.rowsRead, ROWS);
      assert.equal(result.bytesRead, bytes.length);
      // The converter read the file through its path: the node counted it once, all of it.
      assert.deepEqual(distinct(counted), [bytes.length]);
      assert.deepEqual(await descriptorsOf(path.join(source, 'big.parquet')), []);

      // A rate limit paces what the node reads: the file is spooled through the meter, read by read.
      const paced: number[] = [];
      const limited = await copy(
        source,
        ['big.parquet'],
        { format: 'parquet' },
        { format: 'csv' },
        {
          maxBytesPerSecond: 1024 * 1024 * 1024,
          onProgress: (_rows, read) => paced.push(read),
        },
      );
      assert.equal(await readFile(path.join(limited.out, 'big.csv'), 'utf8'), expected);
      assert.equal(limited.result.bytesRead, bytes.length);
      assert.ok(distinct(paced).length > 3, `counted at ${distinct(paced).join(', ')}`);
    });

    it('fails the task, retryably and publishing nothing, when the file changed while it was read', async () => {
      const source = await folderWith({ 'big.parquet': bytes });
      const file = path.join(source, 'big.parquet');
      const out = path.join(base, `out-${tasks + 1}`);
      await assert.rejects(
        copy(
          source,
          ['big.parquet'],
          { format: 'parquet' },
          { format: 'csv' },
          {
            // Counted once the converter is done with it, and checked right after: changed in between.
            onProgress: (_rows, read) => {
              if (read === bytes.length) appendFileSync(file, 'more');
            },
          },
        ),
        (err: unknown) => {
          assert.ok(err instanceof FerryError);
          assert.equal(err.code, 'store_error');
          assert.equal(err.retryable, true);
          assert.match(
            err.message,
            /^filesystem "in": \S+\/big\.parquet changed while it was read \(\d+ -> \d+ bytes/,
          );
          return true;
        },
      );
      assert.deepEqual(await readdir(out), []);
      assert.deepEqual(await descriptorsOf(file), []);
    });

    it('names the file, not its descriptor, when it is not Parquet, and lets go of it', async () => {
      const junk = Buffer.concat([
        Buffer.from('PAR1'),
        Buffer.alloc(64, 7),
        Buffer.from([16, 0, 0, 0]),
        Buffer.from('PAR1'),
      ]);
      const source = await folderWith({ 'junk.parquet': junk });
      await assert.rejects(
        copy(source, ['junk.parquet'], { format: 'parquet' }, { format: 'csv' }),
        (err: unknown) => {
          assert.ok(err instanceof FerryError);
          assert.equal(err.code, 'bad_request');
          assert.match(err.message, /^filesystem source "in": junk\.parquet: a corrupt Parquet file/);
          assert.doesNotMatch(err.message, /\/proc\//);
          return true;
        },
      );
      assert.deepEqual(await descriptorsOf(path.join(source, 'junk.parquet')), []);
    });
  });

  it('still copies files as-is when the source sets no format', async () => {
    const source = await folderWith({ 'raw.csv': 'not;really\ncsv"' });
    const { result, out } = await copy(source, ['raw.csv'], {}, { format: 'parquet' });
    assert.deepEqual(
      result.outputs.map((o) => o.name),
      ['raw.csv'],
    );
    assert.equal(result.converted, undefined);
    assert.equal(await readFile(path.join(out, 'raw.csv'), 'utf8'), 'not;really\ncsv"');
  });

  it('fails the task, publishing nothing, on a malformed file', async () => {
    const source = await folderWith({ 'good.csv': 'a\n1\n', 'bad.csv': 'a\n"open\n' });
    const out = path.join(base, `out-${tasks + 1}`);
    await assert.rejects(
      copy(source, ['good.csv', 'bad.csv'], { format: 'csv' }, { format: 'jsonl' }),
      (err: unknown) => {
        assert.ok(err instanceof FerryError);
        assert.equal(err.code, 'bad_request');
        assert.equal(
          err.message,
          'filesystem source "in": bad.csv line 2: malformed CSV: a quoted field is never closed (unterminated quote)',
        );
        return true;
      },
    );
    assert.deepEqual(
      (await readdir(out)).filter((f) => !f.startsWith('.')),
      [],
    );
  });
});

function distinct(values: number[]): number[] {
  return [...new Set(values)];
}

/** This process's open descriptors of `file`. */
async function descriptorsOf(file: string): Promise<string[]> {
  const fds = await readdir('/proc/self/fd');
  const targets = await Promise.all(fds.map((fd) => readlink(`/proc/self/fd/${fd}`).catch(() => '')));
  return fds.filter((_fd, i) => targets[i] === file);
}

/**
 * The Parquet converter: a child process (started and reused by duckdb-job.ts) that runs DuckDB
 * COPYs between named pipes and Parquet, one job at a time.
 *
 * Why a process of its own: DuckDB runs a query on one of libuv's four shared threads for as long as
 * the query lasts, and a streaming COPY lasts as long as its source; two or three of them would hold
 * every thread the node's file reads and gzip need. A process also keeps DuckDB's memory, and any
 * native crash, out of the node, and a cancelled copy ends with one kill.
 *
 * Why reused: starting one costs about 0.6 s of CPU (loading DuckDB's library and initialising it),
 * as much as converting 100,000 rows; a node writing many files would spend more time starting
 * converters than converting. The DuckDB instance is made at the first job and kept.
 *
 * Why FIFOs: DuckDB reads and writes paths. The converter makes two named pipes in the job's folder
 * (made and removed by the parent): DuckDB reads the table from one and writes the result to the
 * other, and the node writes and reads their other ends itself, non-blocking. The data never passes
 * through this process's JavaScript: relaying it through stdin and stdout cost as much CPU as DuckDB's
 * own work.
 *
 * Protocol (IPC), per job: the parent sends `job`. The converter answers `columns` (read and
 * describe jobs; a describe job then says `done` and is over, with no pipes and no output), then
 * `ready` once the pipes exist and the output is held open (hold()). The parent opens its end of the
 * output and says `opened`; only then does DuckDB start, and the parent opens the input and
 * writes it (write jobs), closing it at the end, which DuckDB reads as EOF. The converter answers
 * `done` with the row count once DuckDB is done and the output released, or `error` and exits; the
 * output's EOF follows. The spill folder (argv[2]) is the converter's, made and removed by the
 * parent.
 *
 * Why wait for `opened`: a FIFO's buffer lives only while some process has it open. A small result
 * fits in it whole, so DuckDB could write it, the converter release the output and the data vanish
 * before a busy parent opened its end, which then waits forever for an EOF that Linux never sends
 * to a reader that saw no writer.
 */
import { execFileSync } from 'node:child_process';
import { closeSync, constants, openSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { DuckDBInstance, type DuckDBConnection } from '@duckdb/node-api';
import type { TableColumn } from '../tables/table-columns.ts';
import {
  MESSAGE_MARK,
  parquetRead,
  parquetReadSql,
  type ParquetRead,
  parquetWriteSql,
  refusedValueMessage,
  sqlString,
} from './parquet-sql.ts';

export type DuckdbJobSpec =
  /** canonical CSV from the node -> Parquet to the node */
  | { kind: 'write-parquet'; dir: string; columns: TableColumn[] }
  /** the Parquet file at `file` -> canonical CSV to the node */
  | { kind: 'read-parquet'; dir: string; file: string }
  /** the Parquet file at `file` -> its columns only, from its footer; no output, no pipes */
  | { kind: 'describe-parquet'; dir: string; file: string };

/** Parent -> converter. `opened`: the parent has the job's output open (see the protocol above). */
export type DuckdbRequest = { kind: 'job'; spec: DuckdbJobSpec } | { kind: 'opened' };

/** Converter -> parent. */
export type DuckdbMessage =
  | { kind: 'columns'; columns: TableColumn[] }
  /** The job's FIFOs exist (the output held open): the parent opens its ends now. */
  | { kind: 'ready'; input?: string; output: string }
  | { kind: 'done'; rows: number }
  /** `data`: the data cannot be converted (not retried); else the converter failed. */
  | { kind: 'error'; data: boolean; message: string };

/**
 * CSV reading limits. A line longer than half DuckDB's buffer trips a bug in DuckDB 1.5.5's reader
 * (a valid quoted field reported as unterminated), so the line limit is half the buffer. Rows of up
 * to 16 MB can be written to Parquet; the buffers cost about 100 MB of the converter's memory.
 */
const BUFFER_SIZE = 32 * 1024 * 1024;
const MAX_LINE_SIZE = BUFFER_SIZE / 2;

async function connect(spill: string): Promise<DuckDBConnection> {
  const instance = await DuckDBInstance.create(':memory:', {
    threads: '1', // one copy per process; the node runs several processes at once
    memory_limit: '256MB',
    temp_directory: spill,
    // The machines are offline, and a copy must not depend on the internet: the Parquet, JSON and
    // ICU extensions are built into the binding, and nothing else is ever fetched.
    autoinstall_known_extensions: 'false',
    autoload_known_extensions: 'false',
    allow_community_extensions: 'false',
    // Rows of a table have no order, and with one thread they keep it anyway; DuckDB only honours
    // a row group byte limit (bounded memory for wide rows) when it need not preserve order.
    preserve_insertion_order: 'false',
  });
  const connection = await instance.connect();
  // Canonical text for timestamptz is UTC, whatever the machine's zone.
  await connection.run("SET TimeZone = 'UTC'");
  return connection;
}

let session: Promise<DuckDBConnection> | undefined;
/** The converter's one DuckDB connection, made at the first job. */
function duckdb(): Promise<DuckDBConnection> {
  session ??= connect(path.join(process.argv[2] ?? path.join(tmpdir(), 'ferry-converter'), 'spill'));
  return session;
}

function mkfifo(file: string): string {
  execFileSync('mkfifo', ['-m', '600', file]);
  return file;
}

/**
 * Opens the job's output FIFO read-write and keeps it open while DuckDB writes. The converter never
 * reads or writes it: holding it means the pipe always has a writer, so the node can open its end
 * before DuckDB does without reading an early EOF. Releasing it once DuckDB is done lets EOF through.
 */
function hold(file: string): () => void {
  const fd = openSync(file, constants.O_RDWR);
  let open = true;
  return () => {
    if (open) closeSync(fd);
    open = false;
  };
}

async function writeParquet(job: Extract<DuckdbJobSpec, { kind: 'write-parquet' }>): Promise<number> {
  const connection = await duckdb();
  const input = mkfifo(path.join(job.dir, 'in.csv'));
  const output = mkfifo(path.join(job.dir, 'out.parquet'));
  const releaseOutput = hold(output);
  try {
    await ready({ kind: 'ready', input, output });
    const sql = parquetWriteSql(job.columns, input, output, {
      bufferSize: BUFFER_SIZE,
      maxLineSize: MAX_LINE_SIZE,
    });
    const result = await connection.run(sql);
    return Number((await result.getRows())[0]?.[0] ?? 0);
  } finally {
    releaseOutput();
  }
}

/** How each column of the Parquet file at `file` is read, from its footer; the columns sent. */
async function describeParquet(connection: DuckDBConnection, file: string): Promise<ParquetRead[]> {
  const described = await connection.runAndReadAll(`DESCRIBE SELECT * FROM read_parquet(${sqlString(file)})`);
  const reads = described
    .getRowObjects()
    .map((r) => parquetRead(String(r['column_name']), String(r['column_type'])));
  await send({ kind: 'columns', columns: reads.map((r) => r.column) });
  return reads;
}

async function readParquet(job: Extract<DuckdbJobSpec, { kind: 'read-parquet' }>): Promise<number> {
  const connection = await duckdb();
  const reads = await describeParquet(connection, job.file);
  const output = mkfifo(path.join(job.dir, 'out.csv'));
  const releaseOutput = hold(output);
  try {
    await ready({ kind: 'ready', output });
    const result = await connection.run(parquetReadSql(job.file, reads, output));
    return Number((await result.getRows())[0]?.[0] ?? 0);
  } finally {
    releaseOutput();
  }
}

let parentOpened: (() => void) | undefined;

/** Says `ready` and waits for the parent's `opened`. */
async function ready(message: Extract<DuckdbMessage, { kind: 'ready' }>): Promise<void> {
  const opened = new Promise<void>((resolve) => (parentOpened = resolve));
  await send(message);
  await opened;
}

function send(message: DuckdbMessage): Promise<void> {
  return new Promise((resolve) => process.send!(message, undefined, {}, () => resolve()));
}

/**
 * Our own value messages as they are, and a value DuckDB's reader refused in the same words;
 * DuckDB's first line otherwise (the rest is advice).
 */
function describeFailure(err: unknown, columns: readonly TableColumn[]): DuckdbMessage {
  const text = err instanceof Error ? err.message : String(err);
  const mark = text.indexOf(MESSAGE_MARK);
  if (mark >= 0) {
    return { kind: 'error', data: true, message: text.slice(mark + MESSAGE_MARK.length).split('\n')[0]! };
  }
  const converting =
    /Error when converting column "([^"]*)"\. (Could not convert string "((?:[^"]|"")*)" to '[^']*')/.exec(
      text,
    );
  if (converting) {
    const [, column, duckdbWords, value] = converting as unknown as [string, string, string, string];
    const message =
      refusedValueMessage(columns, column, value.replaceAll('""', '"')) ??
      `column "${column}": ${duckdbWords}`;
    return { kind: 'error', data: true, message };
  }
  const csvLine = /CSV Error on Line: (\d+)/.exec(text);
  if (csvLine) {
    // The offending line follows as `Original Line: ...` (it may be megabytes): never pass it on.
    const reason = text
      .split('\n')
      .slice(1)
      .find((l) => l.trim() !== '' && !l.startsWith('Original Line:'));
    // DuckDB reports a line longer than its limit as an unterminated quote.
    const why = /unterminated quote|maximum line size/i.test(reason ?? '')
      ? `a row longer than ${MAX_LINE_SIZE / 1024 / 1024} MB, the most a Parquet write takes (or a malformed row)`
      : (reason ?? 'malformed');
    return { kind: 'error', data: true, message: `line ${csvLine[1]} of the table: ${why.slice(0, 300)}` };
  }
  // A Parquet file whose footer is not valid Thrift is bad data too, not a converter failure.
  const data =
    /^(Invalid Input Error|Conversion Error|Out of Range Error|Invalid Error: TProtocolException)/.test(text);
  return { kind: 'error', data, message: text.split('\n')[0]! };
}

// The node that started this converter is gone: nobody will read the result.
process.once('disconnect', () => process.exit(1));

process.on('message', (request: DuckdbRequest) => {
  if (request.kind === 'opened') {
    parentOpened?.();
    parentOpened = undefined;
    return;
  }
  const job = request.spec;
  const run =
    job.kind === 'write-parquet'
      ? writeParquet(job)
      : job.kind === 'read-parquet'
        ? readParquet(job)
        : duckdb().then((connection) => describeParquet(connection, job.file).then(() => 0));
  run.then(
    // Done: wait for the next job.
    (rows) => send({ kind: 'done', rows }),
    async (err: unknown) => {
      const failure = describeFailure(err, job.kind === 'write-parquet' ? job.columns : []);
      // A value quoted in DuckDB's message may be megabytes long.
      await send(failure.kind === 'error' ? { ...failure, message: failure.message.slice(0, 500) } : failure);
      process.exit(1);
    },
  );
});

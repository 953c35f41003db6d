/**
 * The fast path: `LOAD DATA LOCAL INFILE`, fed by mysql2's infileStreamFactory with the records
 * rewritten into LOAD DATA's own text format (tab between fields, `\N` for NULL, backslash escapes
 * for backslashes, tabs, newlines, carriage returns and NUL). Binary values travel as hex into user
 * variables and become bytes with `SET col = UNHEX(@var)`.
 *
 * mysql2 writes each chunk it is given straight to the socket without waiting for it to drain, so
 * the chunks are made here: at most CHUNK_BYTES each (a row longer than that is split; the server
 * joins the packets), and the next one only once the socket has drained.
 */
import { Readable, type Writable } from 'node:stream';
import type { ResultSetHeader } from 'mysql2';
import type { ColumnType } from '../../tables/table-columns.ts';
import type { CanonicalRecord } from './mysql-canonical-input.ts';
import type { MysqlSession } from './mysql-client.ts';
import { quoteIdentifier, type QualifiedTable } from './mysql-config.ts';
import { isServerError } from './mysql-errors.ts';
import { ValueError, mysqlText, type Guard } from './mysql-values.ts';

const CHUNK_BYTES = 256 * 1024;
/**
 * The server refuses LOAD DATA LOCAL: 1148 (older servers), 3948 (MySQL 8, local_infile off on
 * either side), 4166 (MariaDB). Refused before any byte is asked for, so the records are untouched.
 */
const REFUSED = [1148, 3948, 4166];

const ESCAPES: Record<string, string> = { '\\': '\\\\', '\t': '\\t', '\n': '\\n', '\r': '\\r', '\0': '\\0' };
const NEEDS_ESCAPE = /[\\\t\n\r\0]/;
const TO_ESCAPE = /[\\\t\n\r\0]/g;

export interface LoadTarget {
  table: QualifiedTable;
  /** Target column names, one per record field. */
  names: readonly string[];
  /** The fields' logical types. */
  types: readonly ColumnType[];
  /** Checks of the values against the target columns' types, where the server converts silently. */
  guards: readonly (Guard | undefined)[];
}

/** Raised with the record's position when a value cannot be written. */
export class RecordError extends Error {
  readonly row: number;
  readonly column: string;
  constructor(row: number, column: string, cause: ValueError) {
    super(cause.message);
    this.row = row;
    this.column = column;
  }
}

export function loadDataRefused(err: unknown): boolean {
  return REFUSED.some((errno) => isServerError(err, errno));
}

export function loadDataSql(target: LoadTarget): string {
  const fields = target.names.map((name, i) =>
    target.types[i] === 'binary' ? `@v${i}` : quoteIdentifier(name),
  );
  const sets = target.names.flatMap((name, i) =>
    target.types[i] === 'binary' ? [`${quoteIdentifier(name)} = UNHEX(@v${i})`] : [],
  );
  return (
    `LOAD DATA LOCAL INFILE 'ferry-records' INTO TABLE ${target.table.tableSql} CHARACTER SET utf8mb4` +
    ` FIELDS TERMINATED BY '\\t' ENCLOSED BY '' ESCAPED BY '\\\\' LINES TERMINATED BY '\\n' STARTING BY ''` +
    ` (${fields.join(', ')})${sets.length === 0 ? '' : ` SET ${sets.join(', ')}`}`
  );
}

/**
 * Runs the LOAD DATA. Rejects with the records' own failure (a RecordError, the source's error) when
 * there was one: the server then saw the file end early and loaded part of it, which the caller's
 * rollback undoes.
 */
export async function loadData(
  session: MysqlSession,
  target: LoadTarget,
  records: AsyncIterable<CanonicalRecord>,
  operation: string,
): Promise<ResultSetHeader> {
  let stream: Readable | undefined;
  let failure: unknown;
  async function* guarded(): AsyncGenerator<Buffer> {
    try {
      yield* chunks(target, records, session.socket());
    } catch (err) {
      failure = err;
      throw err;
    }
  }
  try {
    return await session.run<ResultSetHeader>(
      {
        sql: loadDataSql(target),
        // Whatever file the server names, it gets these records.
        infileStreamFactory: () => (stream = Readable.from(guarded())),
      },
      operation,
    );
  } catch (err) {
    throw failure ?? err;
  } finally {
    stream?.destroy();
  }
}

async function* chunks(
  target: LoadTarget,
  records: AsyncIterable<CanonicalRecord>,
  socket: Writable | undefined,
): AsyncGenerator<Buffer> {
  let lines: string[] = [];
  let size = 0;
  let row = 0;
  for await (const record of records) {
    row++;
    const line = loadDataLine(record, target, row);
    lines.push(line);
    size += line.length;
    if (size < CHUNK_BYTES) continue;
    const buffer = Buffer.from(lines.join(''), 'utf8');
    lines = [];
    size = 0;
    for (let at = 0; at < buffer.length; at += CHUNK_BYTES) {
      yield buffer.subarray(at, at + CHUNK_BYTES);
      await drained(socket);
    }
  }
  if (lines.length > 0) yield Buffer.from(lines.join(''), 'utf8');
}

function loadDataLine(record: CanonicalRecord, target: LoadTarget, row: number): string {
  let line = '';
  for (let i = 0; i < record.length; i++) {
    const value = record[i];
    if (i > 0) line += '\t';
    if (value === null || value === undefined) {
      line += '\\N';
      continue;
    }
    let text: string;
    try {
      text = mysqlText(value, target.types[i] ?? 'text');
      target.guards[i]?.(text);
    } catch (err) {
      if (err instanceof ValueError) throw new RecordError(row, target.names[i] ?? String(i), err);
      throw err;
    }
    line += NEEDS_ESCAPE.test(text) ? text.replace(TO_ESCAPE, (c) => ESCAPES[c] ?? c) : text;
  }
  return `${line}\n`;
}

/** Resolves once the socket can take more (or is gone: the load then fails on its own). */
function drained(socket: Writable | undefined): Promise<void> {
  if (!socket?.writableNeedDrain) return Promise.resolve();
  return new Promise((resolve) => {
    const done = (): void => {
      socket.off('drain', done);
      socket.off('close', done);
      resolve();
    };
    socket.on('drain', done);
    socket.on('close', done);
  });
}

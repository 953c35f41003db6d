/**
 * Reads one partition of a table as canonical CSV (src/tables/table-columns.ts): a streaming SELECT (rows are
 * parsed as they arrive and the socket is paused when the consumer is slow, so nothing is buffered
 * beyond a few rows) rendered by csv-stringify the way PostgreSQL's COPY renders CSV: a header row,
 * NULL as an empty field, an empty string as `""`, every value as the canonical text of its logical
 * type (mysql-types.ts).
 *
 * Most values are the server's own text, which already is canonical: exact BIGINT and DECIMAL,
 * dates as `2024-01-31`, DATETIME as `2024-01-31 12:00:00.000001`, DOUBLE as its shortest
 * round-trip digits. The rest is rendered here:
 * - binary columns: `\x` and lowercase hex;
 * - TINYINT(1) booleans: `t` / `f`;
 * - FLOAT: MariaDB prints 6 significant digits, which loses bits; the column is read as the exact
 *   DOUBLE it widens to, and written as the shortest digits that read back as the same float32;
 * - TIMESTAMP: the session is UTC, so the value gets `+00`.
 * Zero dates (`0000-00-00`, `2024-00-00`, `0000-00-00 00:00:00`) pass as they are: turning them
 * into NULL would lose a NOT NULL column's values, and a sink that cannot hold them refuses them by
 * name. TIME values outside a day (`-838:59:59`, `100:00:00`) pass the same way.
 *
 * The connection lives exactly as long as the stream: it is ended once the result set is complete,
 * and severed if the query fails, the stream is destroyed by its consumer, or the task's signal aborts.
 */
import { Transform } from 'node:stream';
import type { FieldPacket, TypeCastField, TypeCastNext } from 'mysql2';
import { FerryError } from '../../common/errors.ts';
import { canonicalRecord } from '../../tables/canonical-csv.ts';
import type { PartitionT, ResolvedEndpointT } from '../../protocol/task.ts';
import type { AttemptContext, SourceObject } from '../connector.ts';
import { onAbort } from '../on-abort.ts';
import type { TableColumn } from '../../tables/table-columns.ts';
import { connectMysql, type MysqlSession } from './mysql-client.ts';
import { pickColumns, readColumns, type ColumnInfo } from './mysql-columns.ts';
import { rangeSql, windowSql } from './mysql-conditions.ts';
import { compileMysqlSource, compileMysqlTarget, quoteIdentifier, type MysqlTarget } from './mysql-config.ts';
import { cancelledError, mysqlError, mysqlMessage } from './mysql-errors.ts';

/** The `binary` character set: BINARY, VARBINARY, BLOB and BIT columns carry it, text never does. */
const BINARY_CHARSET = 63;
const BYTE_TYPES = new Set([
  'STRING',
  'VAR_STRING',
  'TINY_BLOB',
  'MEDIUM_BLOB',
  'LONG_BLOB',
  'BLOB',
  'BIT',
  'GEOMETRY',
]);
/** Rows parsed ahead of the CSV encoder before the socket is paused. */
const ROWS_AHEAD = 256;
/** Characters of CSV text gathered before they are passed on as one chunk. */
const CHUNK_CHARS = 64 * 1024;

type Render = (value: string | null) => string | null;

export async function* readMysql(
  source: ResolvedEndpointT,
  partition: PartitionT,
  ctx: AttemptContext,
): AsyncGenerator<SourceObject> {
  const target = compileMysqlTarget(source);
  const options = compileMysqlSource(source, target.database);
  const ls = target.linkedService;
  if (partition.kind === 'files') {
    throw new FerryError(
      'bad_request',
      mysqlMessage(ls, 'cannot read a files partition; a table source plans ranges'),
    );
  }
  if (options.watermarkColumn !== undefined && ctx.window === undefined) {
    // Reading everything instead would copy again what earlier runs copied.
    throw new FerryError(
      'internal',
      mysqlMessage(ls, 'an incremental copy task came without its watermark window'),
    );
  }
  const session = await connectMysql(target, ctx.signal);
  let handedOver = false;
  try {
    // The types are looked up again rather than carried in the partition: bounds are checked against
    // what the columns are now, and a column dropped since planning fails here with a clear message.
    const all = await readColumns(session, options, 'read');
    if (all.length === 0) {
      throw new FerryError(
        'store_object_missing',
        mysqlMessage(ls, `table ${options.table} does not exist (read)`),
      );
    }
    const one = (name: string): ColumnInfo => pickColumns(all, [name], options, ls, 'read')[0] as ColumnInfo;
    const chosen = pickColumns(all, options.columns, options, ls, 'read');
    const conditions: string[] = [];
    try {
      if (partition.kind === 'range') conditions.push(rangeSql(one(partition.column), partition));
      if (ctx.window) conditions.push(windowSql(one(ctx.window.column), ctx.window));
    } catch (err) {
      if (err instanceof FerryError && !err.message.startsWith('mysql ')) {
        throw new FerryError(err.code, mysqlMessage(ls, err.message));
      }
      throw err;
    }
    const where = conditions.length === 0 ? '' : ` WHERE ${conditions.join(' AND ')}`;
    const select = chosen.map((c) => selectItem(c)).join(', ');
    const sql = `SELECT ${select} FROM ${options.tableSql}${where}`;
    const columns = chosen.map((c) => c.column);
    const renders = chosen.map((c) => renderer(c, options.table, ls));
    const name = `part-${String(ctx.taskIndex).padStart(5, '0')}`;
    const object = startQuery(session, target, sql, name, columns, renders, ctx.signal);
    handedOver = true;
    yield object;
  } finally {
    // Once handed over, the stream owns the connection; before that, nobody else will close it.
    if (!handedOver) await session.close();
  }
}

function selectItem(info: ColumnInfo): string {
  const col = quoteIdentifier(info.name);
  return info.column.type === 'float32' ? `CAST(${col} AS DOUBLE) AS ${col}` : col;
}

/** How one column's server text becomes canonical text; undefined values pass as they are. */
function renderer(info: ColumnInfo, table: string, linkedService: string): Render {
  switch (info.column.type) {
    case 'boolean':
      return (v) => {
        if (v === null) return null;
        if (v === '0') return 'f';
        if (v === '1') return 't';
        throw new FerryError(
          'store_error',
          mysqlMessage(
            linkedService,
            `column ${info.name} of ${table} is ${info.columnType}, read as a boolean, but holds ${v}; make it TINYINT(2) or wider to copy it as a number (read)`,
          ),
          { retryable: false },
        );
      };
    case 'float32':
      return (v) => (v === null ? null : shortestFloat32(v));
    case 'timestamptz':
      return (v) => (v === null ? null : `${v}+00`);
    default:
      return (v) => v;
  }
}

/** The shortest decimal that reads back as the same float32 as `text` (a float widened to double). */
export function shortestFloat32(text: string): string {
  const value = Math.fround(Number(text));
  if (!Number.isFinite(value)) return text;
  for (let digits = 1; digits < 9; digits++) {
    const candidate = Number(value.toPrecision(digits));
    if (Math.fround(candidate) === value) return String(candidate);
  }
  return String(Number(value.toPrecision(9)));
}

function startQuery(
  session: MysqlSession,
  target: MysqlTarget,
  sql: string,
  name: string,
  columns: TableColumn[],
  renders: Render[],
  signal: AbortSignal,
): SourceObject {
  // Filled from the column definitions, which arrive before the first row is parsed.
  let binaryColumns = new Set<string>();
  const typeCast = (field: TypeCastField, _next: TypeCastNext): string | null => {
    if (binaryColumns.has(field.name)) {
      const bytes = field.buffer();
      return bytes === null ? null : `\\x${bytes.toString('hex')}`;
    }
    // JSON arrives flagged as binary; it is UTF-8 text.
    return field.type === 'JSON' ? field.string('utf8') : field.string();
  };
  const query = session.connection.query({ sql, rowsAsArray: true, typeCast });
  // Errors after the stream is gone (the socket severed on purpose) have nobody else to hear them.
  query.on('error', () => {});
  const rows = query.stream({ highWaterMark: ROWS_AHEAD });
  let count = 0;
  let finished = false;
  // Rows become canonical CSV text gathered into chunks of about CHUNK_CHARS: a chunk per row would
  // cost the sink a write (two syscalls, for PostgreSQL's COPY) per row.
  let pending = canonicalRecord(columns.map((c) => c.name));
  const stream = new Transform({
    writableObjectMode: true,
    writableHighWaterMark: ROWS_AHEAD,
    transform(row: (string | null)[], _encoding, callback) {
      try {
        const values = new Array<string | null>(row.length);
        for (let i = 0; i < row.length; i++) values[i] = (renders[i] ?? String)(row[i] ?? null);
        pending += canonicalRecord(values);
      } catch (err) {
        callback(err as Error);
        return;
      }
      if (pending.length >= CHUNK_CHARS) {
        this.push(pending);
        pending = '';
      }
      callback();
    },
    flush(callback) {
      if (pending.length > 0) this.push(pending);
      pending = '';
      session.close().then(
        () => {
          finished = true;
          callback();
        },
        (err: unknown) => callback(mysqlError(err, target, 'read')),
      );
    },
  });
  const fail = (err: unknown): void => {
    stream.destroy(
      signal.aborted ? cancelledError(target.linkedService, 'read') : mysqlError(err, target, 'read'),
    );
  };

  query.on('fields', (fields: unknown) => {
    const list = (Array.isArray(fields) ? fields : []) as FieldPacket[];
    binaryColumns = new Set(
      list
        .filter((f) => f.characterSet === BINARY_CHARSET && BYTE_TYPES.has(f.typeName ?? typeName(f)))
        .map((f) => f.name),
    );
  });
  query.on('result', () => {
    count++;
  });
  // A failure before the consumer attaches its pipeline must not be an uncaught 'error': the stream
  // keeps it, and pipeline(), finished() or iteration report it to the consumer.
  stream.on('error', () => {});
  rows.on('error', fail);
  // The session severs the connection on abort, which fails the query (handled above); destroying
  // the stream here as well makes the cancellation visible even if the socket is slow to report it.
  const unhook = onAbort(signal, () => stream.destroy(cancelledError(target.linkedService, 'read')));
  stream.on('close', () => {
    unhook();
    if (!finished) {
      session.kill();
      rows.destroy();
    }
    void session.close();
  });
  rows.pipe(stream);
  return { name, stream, columns, rows: () => (finished ? count : undefined) };
}

/** mysql2 names a column's type only on some versions; the number is always there. */
function typeName(field: FieldPacket): string {
  const names: Record<number, string> = {
    16: 'BIT',
    249: 'TINY_BLOB',
    250: 'MEDIUM_BLOB',
    251: 'LONG_BLOB',
    252: 'BLOB',
    253: 'VAR_STRING',
    254: 'STRING',
    255: 'GEOMETRY',
  };
  return names[field.columnType ?? field.type ?? 0] ?? '';
}

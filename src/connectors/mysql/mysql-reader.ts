/**
 * Reads one partition of a table as CSV: a streaming SELECT (rows are parsed as they arrive and the
 * socket is paused when the consumer is slow, so nothing is buffered beyond a few rows) rendered by
 * csv-stringify the way PostgreSQL's COPY renders CSV: a header row, NULL as an empty field, an empty
 * string as `""`, every value as the server's own text (exact BIGINT and DECIMAL, dates as
 * `2024-01-31 12:00:00`), binary columns as `\x` and hex.
 *
 * The connection lives exactly as long as the stream: it is ended once the result set is complete,
 * and severed if the query fails, the stream is destroyed by its consumer, or the task's signal aborts.
 */
import { Transform } from 'node:stream';
import { stringify } from 'csv-stringify';
import type { FieldPacket, TypeCastField, TypeCastNext } from 'mysql2';
import { FerryError } from '../../common/errors.ts';
import type { PartitionT, ResolvedEndpointT } from '../../protocol/task.ts';
import type { AttemptContext, SourceObject } from '../connector.ts';
import { onAbort } from '../on-abort.ts';
import type { RangePartitionT } from '../postgres/postgres-ranges.ts';
import { connectMysql, type MysqlSession } from './mysql-client.ts';
import { describeColumns, type ColumnInfo } from './mysql-columns.ts';
import {
  boundLiteral,
  compileMysqlSource,
  compileMysqlTarget,
  quoteIdentifier,
  type CompiledMysqlSource,
  type MysqlTarget,
} from './mysql-config.ts';
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

export async function* readMysql(
  source: ResolvedEndpointT,
  partition: PartitionT,
  ctx: AttemptContext,
): AsyncGenerator<SourceObject> {
  const target = compileMysqlTarget(source);
  const options = compileMysqlSource(source, target.database);
  if (partition.kind === 'files') {
    throw new FerryError(
      'bad_request',
      mysqlMessage(target.linkedService, 'cannot read a files partition; a table source plans ranges'),
    );
  }
  const session = await connectMysql(target, ctx.signal);
  let handedOver = false;
  try {
    const where =
      partition.kind === 'range' ? ` WHERE ${await rangeCondition(session, options, partition, target)}` : '';
    const sql = `SELECT ${options.columnsSql} FROM ${options.tableSql}${where}`;
    const object = startQuery(
      session,
      target,
      sql,
      `part-${String(ctx.taskIndex).padStart(5, '0')}.csv`,
      ctx.signal,
    );
    handedOver = true;
    yield object;
  } finally {
    // Once handed over, the stream owns the connection; before that, nobody else will close it.
    if (!handedOver) await session.close();
  }
}

/** `` `id` >= 10 AND `id` < 20 ``, with `` OR `id` IS NULL `` for the range that takes NULLs. */
export function rangeSql(column: ColumnInfo, range: RangePartitionT): string {
  const kind = column.kind;
  if (kind === undefined) {
    throw new FerryError(
      'bad_request',
      `column ${column.name} (${column.columnType}) cannot be split into ranges`,
    );
  }
  const col = quoteIdentifier(column.name);
  const bounds: string[] = [];
  if (range.lo !== null) bounds.push(`${col} >= ${boundLiteral(kind, range.lo)}`);
  if (range.hi !== null) bounds.push(`${col} < ${boundLiteral(kind, range.hi)}`);
  const bounded = bounds.length === 0 ? 'TRUE' : bounds.join(' AND ');
  return range.includeNulls ? `(${bounded} OR ${col} IS NULL)` : bounded;
}

async function rangeCondition(
  session: MysqlSession,
  options: CompiledMysqlSource,
  range: RangePartitionT,
  target: MysqlTarget,
): Promise<string> {
  // The type is looked up again rather than carried in the partition: bounds are checked against
  // what the column is now, and a column dropped since planning fails here with a clear message.
  const [column] = await describeColumns(session, options, [range.column], target.linkedService, 'read');
  if (column === undefined)
    throw new FerryError('internal', mysqlMessage(target.linkedService, 'column lookup returned nothing'));
  try {
    return rangeSql(column, range);
  } catch (err) {
    if (err instanceof FerryError)
      throw new FerryError(err.code, mysqlMessage(target.linkedService, err.message));
    throw err;
  }
}

function startQuery(
  session: MysqlSession,
  target: MysqlTarget,
  sql: string,
  name: string,
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
  const csv = stringify({ quoted_match: [/^$/], record_delimiter: 'unix' });

  let count = 0;
  let finished = false;
  const stream = new Transform({
    transform(chunk: Buffer, _encoding, callback) {
      callback(null, chunk);
    },
    flush(callback) {
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
    const columns = (Array.isArray(fields) ? fields : []) as FieldPacket[];
    binaryColumns = new Set(
      columns
        .filter((f) => f.characterSet === BINARY_CHARSET && BYTE_TYPES.has(f.typeName ?? typeName(f)))
        .map((f) => f.name),
    );
    // The header goes first: rows are only parsed after the column definitions.
    csv.write(columns.map((f) => f.name));
  });
  query.on('result', () => {
    count++;
  });
  // A failure before the consumer attaches its pipeline must not be an uncaught 'error': the stream
  // keeps it, and pipeline(), finished() or iteration report it to the consumer.
  stream.on('error', () => {});
  rows.on('error', fail);
  csv.on('error', fail);
  // The session severs the connection on abort, which fails the query (handled above); destroying
  // the stream here as well makes the cancellation visible even if the socket is slow to report it.
  const unhook = onAbort(signal, () => stream.destroy(cancelledError(target.linkedService, 'read')));
  stream.on('close', () => {
    unhook();
    if (!finished) {
      session.kill();
      rows.destroy();
      csv.destroy();
    }
    void session.close();
  });
  rows.pipe(csv).pipe(stream);
  return { name, stream, rows: () => (finished ? count : undefined) };
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

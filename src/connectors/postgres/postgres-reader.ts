/**
 * Reads one partition of a table as CSV through `COPY (SELECT ...) TO STDOUT`, PostgreSQL's fast
 * path: the server renders the CSV and the bytes flow to the sink with backpressure.
 *
 * The connection lives exactly as long as the stream: it is ended once the COPY has completed (only
 * then is the row count known), and severed if the stream fails, is destroyed by its consumer, or the
 * task's signal aborts.
 */
import { Transform } from 'node:stream';
import { to as copyTo } from 'pg-copy-streams';
import { FerryError } from '../../common/errors.ts';
import type { PartitionT, ResolvedEndpointT } from '../../protocol/task.ts';
import type { AttemptContext, SourceObject } from '../connector.ts';
import { onAbort } from '../on-abort.ts';
import { connectPostgres, type PostgresSession } from './postgres-client.ts';
import { describeColumns, type ColumnInfo } from './postgres-columns.ts';
import {
  compilePostgresSource,
  compilePostgresTarget,
  quoteIdentifier,
  quoteLiteral,
  type CompiledPostgresSource,
  type PostgresTarget,
} from './postgres-config.ts';
import { cancelledError, postgresError, postgresMessage } from './postgres-errors.ts';
import type { RangePartitionT } from './postgres-ranges.ts';

export async function* readPostgres(
  source: ResolvedEndpointT,
  partition: PartitionT,
  ctx: AttemptContext,
): AsyncGenerator<SourceObject> {
  const target = compilePostgresTarget(source);
  const options = compilePostgresSource(source);
  if (partition.kind === 'files') {
    throw new FerryError(
      'bad_request',
      postgresMessage(target.linkedService, 'cannot read a files partition; a table source plans ranges'),
    );
  }
  const session = await connectPostgres(target, ctx.signal);
  let handedOver = false;
  try {
    const where =
      partition.kind === 'range' ? ` WHERE ${await rangeCondition(session, options, partition, target)}` : '';
    const sql = `COPY (SELECT ${options.columnsSql} FROM ${options.tableSql}${where}) TO STDOUT WITH (FORMAT csv, HEADER true)`;
    const object = startCopy(
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

/** `"id" >= '10'::bigint AND "id" < '20'::bigint`, with `OR "id" IS NULL` for the range that takes NULLs. */
export function rangeSql(column: ColumnInfo, range: RangePartitionT): string {
  const col = quoteIdentifier(column.name);
  const literal = (value: string): string => `${quoteLiteral(value)}::${column.castType}`;
  const bounds: string[] = [];
  if (range.lo !== null) bounds.push(`${col} >= ${literal(range.lo)}`);
  if (range.hi !== null) bounds.push(`${col} < ${literal(range.hi)}`);
  const bounded = bounds.length === 0 ? 'TRUE' : bounds.join(' AND ');
  return range.includeNulls ? `(${bounded} OR ${col} IS NULL)` : bounded;
}

async function rangeCondition(
  session: PostgresSession,
  options: CompiledPostgresSource,
  range: RangePartitionT,
  target: PostgresTarget,
): Promise<string> {
  // The type is looked up again rather than carried in the partition: bounds are cast to what the
  // column is now, and a column dropped since planning fails here with a clear message.
  const [column] = await describeColumns(session, options, [range.column], target.linkedService);
  if (column === undefined)
    throw new FerryError('internal', postgresMessage(target.linkedService, 'column lookup returned nothing'));
  try {
    return rangeSql(column, range);
  } catch (err) {
    if (err instanceof FerryError)
      throw new FerryError(err.code, postgresMessage(target.linkedService, err.message));
    throw err;
  }
}

function startCopy(
  session: PostgresSession,
  target: PostgresTarget,
  sql: string,
  name: string,
  signal: AbortSignal,
): SourceObject {
  const { client } = session;
  const copy = client.query(copyTo(sql));
  // The COPY stream ends at CopyDone; the row count arrives just after, with CommandComplete, and
  // the client says 'drain' once the server is ready again. Waiting for it makes rows() exact.
  const completed = new Promise<void>((resolve, reject) => {
    client.once('drain', resolve);
    client.once('error', reject);
    client.once('end', () => reject(new Error('Connection terminated unexpectedly')));
  });
  completed.catch(() => {}); // Observed by flush; when the stream fails first, nobody needs it.

  let finished = false;
  const stream = new Transform({
    transform(chunk: Buffer, _encoding, callback) {
      callback(null, chunk);
    },
    flush(callback) {
      completed
        .then(() => session.close())
        .then(
          () => {
            finished = true;
            callback();
          },
          (err: unknown) => callback(postgresError(err, target, 'copy')),
        );
    },
  });
  // A failure before the consumer attaches its pipeline must not be an uncaught 'error': the stream
  // keeps it, and pipeline(), finished() or iteration report it to the consumer.
  stream.on('error', () => {});
  copy.on('error', (err) => {
    stream.destroy(
      signal.aborted ? cancelledError(target.linkedService, 'copy') : postgresError(err, target, 'copy'),
    );
  });
  // The session severs the connection on abort, which fails the COPY (handled above); destroying the
  // stream here as well makes the cancellation visible even if the socket is slow to report it.
  const unhook = onAbort(signal, () => stream.destroy(cancelledError(target.linkedService, 'copy')));
  stream.on('close', () => {
    unhook();
    if (!finished) session.kill();
    void session.close();
  });
  copy.pipe(stream);
  return { name, stream, rows: () => (finished ? copy.rowCount : undefined) };
}

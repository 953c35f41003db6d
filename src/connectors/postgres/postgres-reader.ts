/**
 * Reads one partition of a table as canonical CSV through `COPY (SELECT ...) TO STDOUT`, PostgreSQL's
 * fast path: the server renders the CSV (canonical thanks to the session's settings, see
 * postgres-client.ts) and the bytes flow to the sink with backpressure. An incremental run reads only
 * its window of the watermark column, within the partition's range.
 *
 * The connection lives exactly as long as the stream: it is ended once the COPY has completed (only
 * then is the row count known), and severed if the stream fails, is destroyed by its consumer, or the
 * task's signal aborts.
 */
import { Transform } from 'node:stream';
import { FerryError } from '../../common/errors.ts';
import type { PartitionT, ResolvedEndpointT } from '../../protocol/task.ts';
import type { AttemptContext, SourceObject } from '../connector.ts';
import { onAbort } from '../on-abort.ts';
import type { TableColumn } from '../../tables/table-columns.ts';
import { CopyOut } from './copy-out.ts';
import { connectPostgres, type PostgresSession } from './postgres-client.ts';
import { describeTable, pickColumn, sourceColumns } from './postgres-columns.ts';
import { rangeSql, whereSql, windowSql } from './postgres-conditions.ts';
import { compilePostgresSource, compilePostgresTarget, type PostgresTarget } from './postgres-config.ts';
import { cancelledError, postgresError, postgresMessage, withStoreName } from './postgres-errors.ts';

const CHECK = 'check table';

export async function* readPostgres(
  source: ResolvedEndpointT,
  partition: PartitionT,
  ctx: AttemptContext,
): AsyncGenerator<SourceObject> {
  const target = compilePostgresTarget(source);
  const options = compilePostgresSource(source);
  const ls = target.linkedService;
  if (partition.kind === 'files') {
    throw new FerryError(
      'bad_request',
      postgresMessage(ls, 'cannot read a files partition; a table source plans ranges'),
    );
  }
  const session = await connectPostgres(target, ctx.signal);
  let handedOver = false;
  try {
    // Types are looked up again rather than carried in the partition: bounds are cast to what the
    // columns are now, and a column dropped since planning fails here with a clear message.
    const table = await describeTable(session, options, ls, CHECK);
    const columns = sourceColumns(table, options, ls, CHECK);
    const conditions: string[] = [];
    if (partition.kind === 'range') {
      const column = pickColumn(table, options, partition.column, ls, CHECK);
      conditions.push(withStoreName(ls, () => rangeSql(column, partition)));
    }
    const window = ctx.window;
    if (window !== undefined) {
      const column = pickColumn(table, options, window.column, ls, CHECK);
      conditions.push(withStoreName(ls, () => windowSql(column, window)));
    }
    const sql = `COPY (SELECT ${options.columnsSql} FROM ${options.tableSql}${whereSql(conditions)}) TO STDOUT WITH (FORMAT csv, HEADER true)`;
    const name = `part-${String(ctx.taskIndex).padStart(5, '0')}`;
    const object = startCopy(session, target, sql, name, columns, ctx.signal);
    handedOver = true;
    yield object;
  } finally {
    // Once handed over, the stream owns the connection; before that, nobody else will close it.
    if (!handedOver) await session.close();
  }
}

function startCopy(
  session: PostgresSession,
  target: PostgresTarget,
  sql: string,
  name: string,
  columns: TableColumn[],
  signal: AbortSignal,
): SourceObject {
  const { client } = session;
  const copy = client.query(new CopyOut(sql));
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
  return { name, stream, columns, rows: () => (finished ? copy.rowCount : undefined) };
}

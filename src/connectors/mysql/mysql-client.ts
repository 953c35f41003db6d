/**
 * One connection for one plan, read or load, tied to the task's AbortSignal: aborting destroys the
 * socket, which stops a result the server is already streaming (or a load it is receiving); the
 * server sees the broken connection and ends the query, rolling back any open transaction.
 *
 * Every session runs in UTC, so TIMESTAMP values are read, compared and written the same way on
 * every node whatever the server's or the node's time zone.
 *
 * LOAD DATA LOCAL is advertised to the server only by sessions that load (`localInfile`): a server
 * may answer any query with a request for a local file, and a reader has no business sending one.
 * A loading session answers such requests with the stream it was given, never with a file.
 */
import type { Writable } from 'node:stream';
import mysql, { type Connection, type QueryOptions } from 'mysql2';
import { onAbort } from '../on-abort.ts';
import type { MysqlTarget } from './mysql-config.ts';
import { cancelledError, mysqlError } from './mysql-errors.ts';

/**
 * How a session that writes behaves:
 * - strict sql_mode, so an INSERT fails on a value it would truncate or convert (LOAD DATA LOCAL
 *   still turns such failures into warnings, which the loaders check); NO_AUTO_VALUE_ON_ZERO keeps a
 *   copied 0 in an AUTO_INCREMENT column a 0; NO_BACKSLASH_ESCAPES stays off, as escaping assumes;
 * - a source may pause a load's stream for a long time (a slow query before its first row, a rate
 *   limit), and the server gives up on a silent LOAD DATA LOCAL after net_read_timeout (30 s);
 * - a node frozen mid-transaction holds its locks until the server drops the connection: after
 *   wait_timeout of silence (8 h by default), here 10 minutes.
 */
export const WRITING_SESSION = {
  settings:
    "sql_mode = 'STRICT_ALL_TABLES,ERROR_FOR_DIVISION_BY_ZERO,NO_ENGINE_SUBSTITUTION,NO_AUTO_VALUE_ON_ZERO'," +
    ' net_read_timeout = 600, net_write_timeout = 600, wait_timeout = 600',
} as const;

export interface SessionOptions {
  /** `a = 1, b = 'x'`: session variables set once after connecting, besides the UTC time zone. */
  settings?: string;
  /** Advertise LOAD DATA LOCAL (default false); without it the server refuses LOAD DATA LOCAL. */
  localInfile?: boolean;
}

export interface MysqlSession {
  readonly connection: Connection;
  /** Runs one prepared statement; failures come back as FerryErrors naming `operation`. */
  query<R>(sql: string, params: (string | number | null)[], operation: string): Promise<R[]>;
  /**
   * Runs a statement over the text protocol: what cannot be prepared (LOAD DATA, transaction
   * control) and values escaped by the client (multi-row INSERTs).
   */
  run<R>(options: string | QueryOptions, operation: string): Promise<R>;
  /** The socket, to hold a load's stream to its pace. */
  socket(): Writable | undefined;
  /** Ends the connection; safe to call more than once. */
  close(): Promise<void>;
  /** Severs the connection at once, mid-query if need be. */
  kill(): void;
  /** Whether the connection was severed (killed, or lost). */
  readonly dead: boolean;
}

export async function connectMysql(
  target: MysqlTarget,
  signal: AbortSignal,
  options: SessionOptions = {},
): Promise<MysqlSession> {
  if (signal.aborted) throw cancelledError(target.linkedService, 'connect');
  const connection = mysql.createConnection({
    ...target.connection,
    flags: options.localInfile === true ? ['LOCAL_FILES'] : ['-LOCAL_FILES'],
  });
  let dead = false;
  // A connection lost while idle is emitted as 'error'; unheard, it would crash the node. The query
  // or stream in progress gets its own error, which is the one reported.
  connection.on('error', () => {
    dead = true;
  });
  connection.on('end', () => {
    dead = true;
  });
  let killed = false;
  // mysql2 forgets the statement in flight when its connection is destroyed on purpose: these settle it.
  const inFlight = new Set<(err: Error) => void>();
  const kill = (): void => {
    killed = true;
    dead = true;
    connection.destroy();
    (connection as unknown as { stream?: Writable }).stream?.destroy();
    const severed = Object.assign(new Error('the connection was severed'), {
      code: 'PROTOCOL_CONNECTION_LOST',
    });
    for (const settle of inFlight) settle(severed);
    inFlight.clear();
  };
  const unhook = onAbort(signal, kill);
  let closing: Promise<void> | undefined;
  const close = (): Promise<void> => {
    closing ??= new Promise<void>((resolve) => {
      unhook();
      if (killed) return resolve();
      // end() waits for the server's goodbye; a dead socket is simply destroyed.
      connection.end(() => {
        dead = true;
        connection.destroy();
        resolve();
      });
    });
    return closing;
  };
  const fail = (err: unknown, operation: string) =>
    signal.aborted ? cancelledError(target.linkedService, operation) : mysqlError(err, target, operation);
  /** Runs `start`, whose callback settles the promise, unless the connection is severed first. */
  const settled = <R>(
    operation: string,
    start: (done: (err: Error | null, result?: unknown) => void) => void,
  ) =>
    new Promise<R>((resolve, reject) => {
      if (killed) return reject(fail(new Error('the connection was severed'), operation));
      const settle = (err: Error | null, result?: unknown): void => {
        if (!inFlight.delete(settle)) return;
        if (err) reject(fail(err, operation));
        else resolve(result as R);
      };
      inFlight.add(settle);
      start(settle);
    });
  const run = <R>(query: string | QueryOptions, operation: string): Promise<R> =>
    settled<R>(operation, (done) =>
      connection.query(typeof query === 'string' ? { sql: query } : query, (err, result) =>
        done(err, result),
      ),
    );

  try {
    // Settled by kill() too: mysql2 never calls back a connect whose socket was destroyed, so a
    // signal aborting while the server has not yet answered would otherwise leave this waiting.
    await settled<void>('connect', (done) => connection.connect((err) => done(err)));
    const settings = options.settings === undefined ? '' : `, ${options.settings}`;
    await run(`SET time_zone = '+00:00'${settings}`, 'connect');
  } catch (err) {
    kill();
    await close();
    throw fail(err, 'connect');
  }
  return {
    connection,
    query<R>(sql: string, params: (string | number | null)[], operation: string): Promise<R[]> {
      return settled<R[]>(operation, (done) =>
        connection.execute(sql, params, (err, rows) => done(err, rows)),
      );
    },
    run,
    socket: () => (connection as unknown as { stream?: Writable }).stream,
    close,
    kill,
    get dead() {
      return dead;
    },
  };
}

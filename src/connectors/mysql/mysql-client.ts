/**
 * One connection for one plan or one read, tied to the task's AbortSignal: aborting destroys the
 * socket, which stops a result the server is already streaming; the server sees the broken
 * connection on its next write and ends the query.
 *
 * Every session runs in UTC, so TIMESTAMP values are read, compared and written out the same way on
 * every node whatever the server's or the node's time zone.
 */
import mysql, { type Connection } from 'mysql2';
import { onAbort } from '../on-abort.ts';
import type { MysqlTarget } from './mysql-config.ts';
import { cancelledError, mysqlError } from './mysql-errors.ts';

export interface MysqlSession {
  readonly connection: Connection;
  /** Runs one prepared statement; failures come back as FerryErrors naming `operation`. */
  query<R>(sql: string, params: (string | number | null)[], operation: string): Promise<R[]>;
  /** Ends the connection; safe to call more than once. */
  close(): Promise<void>;
  /** Severs the connection at once, mid-query if need be. */
  kill(): void;
}

export async function connectMysql(target: MysqlTarget, signal: AbortSignal): Promise<MysqlSession> {
  if (signal.aborted) throw cancelledError(target.linkedService, 'connect');
  const connection = mysql.createConnection(target.connection);
  // A connection lost while idle is emitted as 'error'; unheard, it would crash the node. The query
  // or stream in progress gets its own error, which is the one reported.
  connection.on('error', () => {});
  let killed = false;
  const kill = (): void => {
    killed = true;
    connection.destroy();
  };
  const unhook = onAbort(signal, kill);
  let closing: Promise<void> | undefined;
  const close = (): Promise<void> => {
    closing ??= new Promise<void>((resolve) => {
      unhook();
      if (killed) return resolve();
      // end() waits for the server's goodbye; a dead socket is simply destroyed.
      connection.end(() => {
        connection.destroy();
        resolve();
      });
    });
    return closing;
  };
  const fail = (err: unknown, operation: string) =>
    signal.aborted ? cancelledError(target.linkedService, operation) : mysqlError(err, target, operation);

  try {
    await new Promise<void>((resolve, reject) =>
      connection.connect((err) => (err ? reject(err) : resolve())),
    );
    await new Promise<void>((resolve, reject) =>
      connection.query("SET time_zone = '+00:00'", (err) => (err ? reject(err) : resolve())),
    );
  } catch (err) {
    kill();
    await close();
    throw fail(err, 'connect');
  }
  return {
    connection,
    query<R>(sql: string, params: (string | number | null)[], operation: string): Promise<R[]> {
      return new Promise<R[]>((resolve, reject) => {
        connection.execute(sql, params, (err, rows) => {
          if (err) reject(fail(err, operation));
          else resolve(rows as R[]);
        });
      });
    },
    close,
    kill,
  };
}

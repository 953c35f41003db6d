/**
 * One connection for one plan, read or sink attempt, tied to the task's AbortSignal: aborting severs
 * the socket, which is the only way to stop a COPY the server is already streaming (pg cannot send a
 * cancel request), and the server notices, rolls back and ends the backend.
 *
 * Every session first sets what makes the server's text output canonical (src/tables/table-columns.ts),
 * whatever the server's or the role's defaults: timestamptz in UTC (`... +00`), ISO dates, hex
 * bytea, shortest round-trip floats (extra_float_digits > 0, PostgreSQL 12+; exact, so a float
 * watermark read back as text compares equal), and the default interval style. They are set with
 * SET rather than as startup options, which connection poolers such as PgBouncer refuse.
 */
import { Client, type QueryResult, type QueryResultRow } from 'pg';
import { onAbort } from '../on-abort.ts';
import type { PostgresTarget } from './postgres-config.ts';
import { cancelledError, postgresError } from './postgres-errors.ts';

const SESSION_SETTINGS = [
  "SET TimeZone = 'UTC'",
  "SET DateStyle = 'ISO'",
  "SET IntervalStyle = 'postgres'",
  "SET bytea_output = 'hex'",
  'SET extra_float_digits = 1',
].join('; ');

export interface PostgresSession {
  readonly client: Client;
  /** Runs one statement; failures come back as FerryErrors naming `operation`. */
  query<R extends QueryResultRow>(sql: string, params: unknown[], operation: string): Promise<R[]>;
  /** Runs one statement and answers how many rows it touched. */
  execute(sql: string, params: unknown[], operation: string): Promise<number>;
  /** Ends the connection; safe to call more than once. */
  close(): Promise<void>;
  /** Severs the connection at once, mid-query if need be. */
  kill(): void;
}

export async function connectPostgres(target: PostgresTarget, signal: AbortSignal): Promise<PostgresSession> {
  if (signal.aborted) throw cancelledError(target.linkedService, 'connect');
  const client = new Client(target.client);
  // A connection lost while idle is emitted as 'error' on the client; unheard, it would crash the
  // node. The query or stream in progress gets its own error, which is the one reported.
  client.on('error', () => {});
  const kill = (): void => {
    client.connection.stream.destroy();
  };
  const unhook = onAbort(signal, kill);
  let closing: Promise<void> | undefined;
  const close = (): Promise<void> => {
    closing ??= (async () => {
      unhook();
      await client.end().catch(() => {});
    })();
    return closing;
  };

  try {
    await client.connect();
    await client.query(SESSION_SETTINGS);
  } catch (err) {
    await close();
    throw signal.aborted
      ? cancelledError(target.linkedService, 'connect')
      : postgresError(err, target, 'connect');
  }
  const run = async <R extends QueryResultRow>(
    sql: string,
    params: unknown[],
    operation: string,
  ): Promise<QueryResult<R>> => {
    try {
      return await client.query<R>(sql, params);
    } catch (err) {
      throw signal.aborted
        ? cancelledError(target.linkedService, operation)
        : postgresError(err, target, operation);
    }
  };
  return {
    client,
    query: async <R extends QueryResultRow>(sql: string, params: unknown[], operation: string) =>
      (await run<R>(sql, params, operation)).rows,
    execute: async (sql, params, operation) => (await run(sql, params, operation)).rowCount ?? 0,
    close,
    kill,
  };
}

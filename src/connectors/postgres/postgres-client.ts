/**
 * One connection for one plan or one read, tied to the task's AbortSignal: aborting severs the
 * socket, which is the only way to stop a COPY the server is already streaming (pg cannot send a
 * cancel request), and the server notices and ends the backend.
 */
import { Client, type QueryResultRow } from 'pg';
import { onAbort } from '../on-abort.ts';
import type { PostgresTarget } from './postgres-config.ts';
import { cancelledError, postgresError } from './postgres-errors.ts';

export interface PostgresSession {
  readonly client: Client;
  /** Runs one statement; failures come back as FerryErrors naming `operation`. */
  query<R extends QueryResultRow>(sql: string, params: unknown[], operation: string): Promise<R[]>;
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
  } catch (err) {
    await close();
    throw signal.aborted
      ? cancelledError(target.linkedService, 'connect')
      : postgresError(err, target, 'connect');
  }
  return {
    client,
    async query<R extends QueryResultRow>(sql: string, params: unknown[], operation: string): Promise<R[]> {
      try {
        return (await client.query<R>(sql, params)).rows;
      } catch (err) {
        throw signal.aborted
          ? cancelledError(target.linkedService, operation)
          : postgresError(err, target, operation);
      }
    },
    close,
    kill,
  };
}

/**
 * The service's own store failing under it: PostgreSQL restarting, failing over, or cutting a
 * connection (`pg_terminate_backend`). Every such failure, whatever shape pg gives it (a socket
 * error, a FATAL message with a SQLSTATE, a plain "Connection terminated"), becomes one retryable
 * `unavailable` error: the API answers 503 with Retry-After, the scheduler backs off, nodes retry.
 */
import { describeSystemError, FerryError, isNetworkError, toFerryError } from '../../common/errors.ts';

/** Seconds an API caller is told to wait (Retry-After) while the store is away. */
export const STORE_RETRY_AFTER_S = 1;

/**
 * SQLSTATEs that say "this connection or server is going away or not there yet": class 08
 * (connection exception), 57P01 admin_shutdown, 57P02 crash_shutdown, 57P03 cannot_connect_now,
 * 57P05 idle_session_timeout, 53300 too_many_connections.
 */
function transientSqlState(code: string): boolean {
  return code.startsWith('08') || ['57P01', '57P02', '57P03', '57P05', '53300'].includes(code);
}

/** What pg says, without a SQLSTATE, when a connection died or could not be made in time. */
const LOST_CONNECTION =
  /^(Connection terminated|Client has encountered a connection error|Client was closed and is not queryable|timeout exceeded when trying to connect|Connection terminated due to connection timeout)/;

/** The store-unavailable error `err` stands for, or undefined when it is something else. */
export function storeUnavailable(err: unknown): FerryError | undefined {
  if (!(err instanceof Error) || err instanceof FerryError) return undefined;
  const code = (err as { code?: unknown }).code;
  let why: string | undefined;
  if (typeof code === 'string' && isNetworkError(err)) {
    // "connection refused", or the bare code: a socket error's message names the store's address.
    const described = describeSystemError(err);
    why = described === err.message ? code : described;
  } else if (typeof code === 'string' && /^[0-9A-Z]{5}$/.test(code) && transientSqlState(code))
    why = `${err.message} (${code})`;
  else if (code === undefined && LOST_CONNECTION.test(err.message)) why = err.message;
  if (why === undefined) return undefined;
  return new FerryError('unavailable', `the service's store is unavailable: ${why}`, {
    cause: err,
    retryable: true,
    hint: 'the service reconnects by itself; retry in a moment',
  });
}

/** toFerryError for the service: a lost store connection is `unavailable`, not `internal`. */
export function toServiceError(err: unknown, context?: string): FerryError {
  return storeUnavailable(err) ?? toFerryError(err, context);
}

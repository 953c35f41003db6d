/**
 * The one place where MySQL, MariaDB and network failures become FerryErrors, with the retry
 * decision: `mysql "my1": Table 'test.orderz' doesn't exist (read)`.
 */
import { FerryError, describeSystemError, isConnectionLost, isNetworkError } from '../../common/errors.ts';

/** What a message may name about the store. The password is here only to be scrubbed. */
export interface MysqlErrorScope {
  linkedService: string;
  address: string;
  password: string | undefined;
}

const AUTH = new Set([
  'ER_ACCESS_DENIED_ERROR',
  'ER_DBACCESS_DENIED_ERROR',
  'ER_ACCESS_DENIED_NO_PASSWORD_ERROR',
]);
const MISSING = new Set(['ER_NO_SUCH_TABLE', 'ER_BAD_DB_ERROR', 'ER_BAD_FIELD_ERROR']);
// The same statement can succeed on a new attempt: a lock freed, a killed or lost connection replaced.
const RETRYABLE = new Set([
  'ER_LOCK_WAIT_TIMEOUT',
  'ER_LOCK_DEADLOCK',
  'ER_QUERY_INTERRUPTED',
  'ER_CONNECTION_KILLED',
  'ER_SERVER_SHUTDOWN',
  'ER_CON_COUNT_ERROR',
  'ER_TOO_MANY_USER_CONNECTIONS',
  'PROTOCOL_CONNECTION_LOST',
  'PROTOCOL_SEQUENCE_TIMEOUT',
]);

export function mysqlMessage(linkedService: string, text: string): string {
  return `mysql ${JSON.stringify(linkedService)}: ${text}`;
}

export function cancelledError(linkedService: string, operation: string): FerryError {
  return new FerryError('cancelled', mysqlMessage(linkedService, `cancelled (${operation})`));
}

export function mysqlError(err: unknown, scope: MysqlErrorScope, operation: string): FerryError {
  if (err instanceof FerryError) return err;
  const make = (code: FerryError['code'], what: string, retryable: boolean): FerryError =>
    new FerryError(code, mysqlMessage(scope.linkedService, `${scrub(what, scope.password)} (${operation})`), {
      cause: err,
      retryable,
    });

  if (!(err instanceof Error)) return make('store_error', String(err), false);
  if (err.name === 'AbortError') return cancelledError(scope.linkedService, operation);
  const code = (err as NodeJS.ErrnoException).code ?? '';
  // A connection that broke under a statement is lost, not unreachable: the next attempt reconnects.
  if (code === 'PROTOCOL_CONNECTION_LOST' || isConnectionLost(err)) {
    return make('store_error', `connection to ${scope.address} was lost`, true);
  }
  if (isNetworkError(err)) {
    return make('store_unreachable', `cannot reach ${scope.address}: ${describeSystemError(err)}`, true);
  }
  if (AUTH.has(code)) return make('store_auth', err.message, false);
  if (MISSING.has(code)) return make('store_object_missing', err.message, false);
  return make('store_error', err.message, RETRYABLE.has(code));
}

/**
 * Whether `err` (a FerryError from a session, or the driver's own error) is the server's `code`
 * (`ER_DUP_ENTRY`) or errno (4166; newer servers' codes have no name in the driver).
 */
export function isServerError(err: unknown, code: string | number): boolean {
  const cause = err instanceof FerryError ? err.cause : err;
  if (!(cause instanceof Error)) return false;
  const e = cause as Error & { code?: unknown; errno?: unknown };
  return typeof code === 'string' ? e.code === code : e.errno === code;
}

/** Servers do not echo passwords, but a message should not rely on that. */
function scrub(text: string, password: string | undefined): string {
  // Very short passwords would blank out ordinary letters, and are not worth hiding anyway.
  return password !== undefined && password.length >= 4 ? text.replaceAll(password, '***') : text;
}

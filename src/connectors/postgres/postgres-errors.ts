/**
 * The one place where PostgreSQL and network failures become FerryErrors, with the retry decision:
 * `postgres "pg1": relation "public.orderz" does not exist (check table)`.
 */
import { DatabaseError } from 'pg';
import { FerryError, describeSystemError, isNetworkError } from '../../common/errors.ts';

/** What a message may name about the store. The password is here only to be scrubbed. */
export interface PostgresErrorScope {
  linkedService: string;
  address: string;
  password: string | undefined;
}

const AUTH = new Set(['28P01', '28000']);
const MISSING = new Set(['42P01', '3D000', '42703']);
// Serialization failure, deadlock, admin shutdown: the same statement can succeed on a new attempt.
const RETRYABLE = new Set(['40001', '40P01', '57P01']);

export function postgresMessage(linkedService: string, text: string): string {
  return `postgres ${JSON.stringify(linkedService)}: ${text}`;
}

/** Runs `build`, giving a refused value or name (a NUL byte, an odd name) the linked service's name. */
export function withStoreName<T>(linkedService: string, build: () => T): T {
  try {
    return build();
  } catch (err) {
    if (err instanceof FerryError)
      throw new FerryError(err.code, postgresMessage(linkedService, err.message));
    throw err;
  }
}

export function cancelledError(linkedService: string, operation: string): FerryError {
  return new FerryError('cancelled', postgresMessage(linkedService, `cancelled (${operation})`));
}

export function postgresError(err: unknown, scope: PostgresErrorScope, operation: string): FerryError {
  if (err instanceof FerryError) return err;
  const make = (code: FerryError['code'], what: string, retryable: boolean): FerryError =>
    new FerryError(
      code,
      postgresMessage(scope.linkedService, `${scrub(what, scope.password)} (${operation})`),
      {
        cause: err,
        retryable,
      },
    );

  if (err instanceof DatabaseError) {
    const sqlstate = err.code ?? '';
    if (AUTH.has(sqlstate)) return make('store_auth', err.message, false);
    if (MISSING.has(sqlstate)) return make('store_object_missing', err.message, false);
    // Bad data (class 22) and broken constraints (23) fail the same way on every attempt.
    return make(
      'store_error',
      `${err.message}${copyPosition(err.where)}`,
      RETRYABLE.has(sqlstate) || sqlstate.startsWith('08'),
    );
  }
  if (err instanceof Error) {
    if (err.name === 'AbortError') return cancelledError(scope.linkedService, operation);
    if (isNetworkError(err)) {
      return make('store_unreachable', `cannot reach ${scope.address}: ${describeSystemError(err)}`, true);
    }
    // pg's own words for a connect timeout and for a socket that closed under a query.
    if (/timeout/i.test(err.message)) {
      return make('store_unreachable', `cannot reach ${scope.address}: timed out`, true);
    }
    if (/^Connection terminated/.test(err.message)) {
      return make('store_unreachable', `connection to ${scope.address} was lost`, true);
    }
    return make('store_error', err.message, false);
  }
  return make('store_error', String(err), false);
}

/**
 * Where in a COPY's input a row failed, from the error's context (`COPY t, line 3, column k: "zz"`):
 * ` at line 3, column k`. Lines count from the header, as in the file. The value itself is left out:
 * the message already quotes it when it is short, and a long one would drown the message.
 */
function copyPosition(where: string | undefined): string {
  const match = where === undefined ? null : /^COPY [^\n]*?, line (\d+)(?:, column ([^:\n]+))?/.exec(where);
  if (!match) return '';
  return ` at line ${match[1]}${match[2] === undefined ? '' : `, column ${match[2]}`}`;
}

/** PostgreSQL does not echo passwords, but a message should not rely on that. */
function scrub(text: string, password: string | undefined): string {
  // Very short passwords would blank out ordinary letters, and are not worth hiding anyway.
  return password !== undefined && password.length >= 4 ? text.replaceAll(password, '***') : text;
}

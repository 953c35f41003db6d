/**
 * The error catalogue. Every failure Ferry reports is a FerryError with a stable `code` from a closed
 * union, a `retryable` decision and an optional human `hint`. Catch blocks turn `unknown` into one of
 * these with `toFerryError`; `problem()` (service) and task outcomes (node) map them outward. Where
 * a caller must act on one particular refusal, the error names it with a `reason` (never by its
 * message text, which is for people and may be reworded).
 */

export type ErrorCode =
  | 'bad_request' // malformed input: a field is missing or wrong
  | 'unauthorized' // no or wrong token / key
  | 'forbidden' // authenticated, but not allowed (e.g. a path outside --allow-path)
  | 'not_found'
  | 'conflict' // the object exists or is in a state that forbids the change
  | 'registration_refused' // a node may not join (key, name, version, other gateway, cap)
  | 'stale_epoch' // a claim or dispatch from a dispatcher that lost its lease
  | 'lease_lost' // a report from an attempt the service already declared lost
  | 'capacity' // a worker is at its concurrent jobs limit
  | 'rate_limited' // too many failed attempts from one address: wait (Retry-After) and try again
  | 'draining' // a worker is draining and takes no new tasks
  | 'unavailable' // a peer or the service cannot be reached right now
  | 'store_unreachable' // a data store cannot be reached
  | 'store_auth' // a data store refused the credentials
  | 'store_object_missing' // a table, container or path does not exist
  | 'store_error' // any other error a data store reported
  | 'verification_failed' // rows/bytes/checksums read and written differ
  | 'cancelled'
  | 'internal';

/**
 * Finer than a code, for a caller that acts on one particular refusal; closed like the codes, and
 * carried in the problem body, so it survives a process hop. Only for what a caller branches on.
 */
export type ErrorReason =
  // A peer refused a node-to-node request: it does not (yet) count the sender a member of the
  // gateway (it learns members from its own heartbeat). The sender is reachable all the same.
  'not_a_member';

const ERROR_REASONS: ReadonlySet<string> = new Set<ErrorReason>(['not_a_member']);

export function isErrorReason(value: unknown): value is ErrorReason {
  return typeof value === 'string' && ERROR_REASONS.has(value);
}

const HTTP_STATUS: Record<ErrorCode, number> = {
  bad_request: 400,
  unauthorized: 401,
  forbidden: 403,
  not_found: 404,
  conflict: 409,
  registration_refused: 403,
  stale_epoch: 409,
  lease_lost: 409,
  capacity: 429,
  rate_limited: 429,
  draining: 503,
  unavailable: 503,
  store_unreachable: 502,
  store_auth: 502,
  store_object_missing: 502,
  store_error: 502,
  verification_failed: 500,
  cancelled: 499,
  internal: 500,
};

const RETRYABLE_BY_DEFAULT: ReadonlySet<ErrorCode> = new Set<ErrorCode>([
  'unavailable',
  'store_unreachable',
  'capacity',
  'rate_limited',
  'draining',
  'internal',
]);

export interface FerryErrorOptions {
  cause?: unknown;
  retryable?: boolean;
  hint?: string;
  reason?: ErrorReason;
}

export class FerryError extends Error {
  readonly code: ErrorCode;
  readonly retryable: boolean;
  readonly hint: string | undefined;
  readonly reason: ErrorReason | undefined;

  constructor(code: ErrorCode, message: string, options: FerryErrorOptions = {}) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.name = 'FerryError';
    this.code = code;
    this.retryable = options.retryable ?? RETRYABLE_BY_DEFAULT.has(code);
    this.hint = options.hint;
    this.reason = options.reason;
  }

  get httpStatus(): number {
    return HTTP_STATUS[this.code];
  }
}

const ERROR_CODES = new Set(Object.keys(HTTP_STATUS));

export function isErrorCode(value: unknown): value is ErrorCode {
  return typeof value === 'string' && ERROR_CODES.has(value);
}

/** Turns anything thrown into a FerryError; network errors become `unavailable`. */
export function toFerryError(err: unknown, context?: string): FerryError {
  if (err instanceof FerryError) return err;
  const prefix = context ? `${context}: ` : '';
  if (err instanceof Error) {
    if (isNetworkError(err)) {
      return new FerryError('unavailable', `${prefix}${describeSystemError(err)}`, { cause: err });
    }
    if (err.name === 'AbortError') return new FerryError('cancelled', `${prefix}cancelled`, { cause: err });
    return new FerryError('internal', `${prefix}${err.message}`, { cause: err });
  }
  return new FerryError('internal', `${prefix}${String(err)}`);
}

/**
 * Socket error codes that mean the other end could not be reached, or the connection to it broke:
 * Node's own (net, dns) and undici's (fetch, the Azure SDK), so that every store and every hop
 * decides "network" the same way.
 */
const NETWORK_ERROR_CODES: ReadonlySet<string> = new Set([
  'ECONNREFUSED',
  'ECONNRESET',
  'ETIMEDOUT',
  'EHOSTUNREACH',
  'ENETUNREACH',
  'ENOTFOUND',
  'EAI_AGAIN',
  'EPIPE',
  'UND_ERR_SOCKET',
  'UND_ERR_CONNECT_TIMEOUT',
]);

/** Of those, the ones that say a connection that was open broke (rather than never opened). */
const CONNECTION_LOST_CODES: ReadonlySet<string> = new Set(['ECONNRESET', 'EPIPE', 'UND_ERR_SOCKET']);

const codeOf = (err: unknown): unknown =>
  err instanceof Error ? (err as { code?: unknown }).code : undefined;

/**
 * Whether `err` itself (not its causes: a caller that wraps walks them) says the other end could
 * not be reached or the connection to it broke: worth retrying, and not the store's or our fault.
 */
export function isNetworkError(err: unknown): boolean {
  const code = codeOf(err);
  return typeof code === 'string' && NETWORK_ERROR_CODES.has(code);
}

/** A network error on a connection that was open (reset, broken pipe), not one that never opened. */
export function isConnectionLost(err: unknown): boolean {
  const code = codeOf(err);
  return typeof code === 'string' && CONNECTION_LOST_CODES.has(code);
}

/** "connection refused" rather than "connect ECONNREFUSED 127.0.0.1:8060". */
export function describeSystemError(err: Error): string {
  const sysCode = (err as NodeJS.ErrnoException).code;
  switch (sysCode) {
    case 'ECONNREFUSED':
      return 'connection refused';
    case 'ECONNRESET':
      return 'connection reset';
    case 'ETIMEDOUT':
      return 'timed out';
    case 'EHOSTUNREACH':
      return 'host unreachable';
    case 'ENOTFOUND':
      return 'host not found';
    default:
      return err.message;
  }
}

/** The JSON body of an error response, shared by the service API and the node-to-node channel. */
export interface Problem {
  code: ErrorCode;
  message: string;
  retryable: boolean;
  hint?: string;
  /**
   * Present only on the refusals that have one (ErrorReason). A reader that does not know the
   * field, or the value, still has the code: older nodes ignore it, newer ones drop an unknown one.
   */
  reason?: ErrorReason;
}

export function toProblem(err: FerryError): Problem {
  return {
    code: err.code,
    message: err.message,
    retryable: err.retryable,
    ...(err.hint === undefined ? {} : { hint: err.hint }),
    ...(err.reason === undefined ? {} : { reason: err.reason }),
  };
}

export function fromProblem(body: unknown, fallbackStatus: number): FerryError {
  if (typeof body === 'object' && body !== null) {
    const p = body as Partial<Record<keyof Problem, unknown>>;
    if (isErrorCode(p.code) && typeof p.message === 'string') {
      return new FerryError(p.code, p.message, {
        retryable: p.retryable === true,
        ...(typeof p.hint === 'string' ? { hint: p.hint } : {}),
        ...(isErrorReason(p.reason) ? { reason: p.reason } : {}),
      });
    }
  }
  return new FerryError(fallbackStatus >= 500 ? 'unavailable' : 'bad_request', `HTTP ${fallbackStatus}`);
}

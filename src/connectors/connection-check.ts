/**
 * What the connection tests of every store share (SourceConnector.checkRead and
 * SinkConnector.checkWrite, for `ferry linked-service test`): the operations their messages name,
 * the rule for probe names, the bytes a files sink writes, and two ways of dressing a connector's
 * own FerryError for the operator who runs the test: a hint where its mapping gave none, and a write
 * the store refused said as such.
 */
import { FerryError, type ErrorCode } from '../common/errors.ts';

/** The operations a test's messages end with: `(test read)`. */
export const TEST_READ = 'test read';
export const TEST_WRITE = 'test write';
/** Removing the probe after it was written: a failure here may leave it behind, so it is named apart. */
export const TEST_CLEANUP = 'test write, removing the probe';

/**
 * A probe name is safe unquoted as a PostgreSQL or MySQL table name (at most 63 bytes) and as a file
 * or blob name on every store.
 */
const PROBE_NAME = /^[a-z_][a-z0-9_]{0,62}$/;

/**
 * How long removing a probe may hold up a failed or cancelled test, when the test's own signal or
 * connection can no longer do it: long enough for a store that answers, short enough that a
 * cancelled test still ends promptly.
 */
export const CLEANUP_MS = 2000;

/** What a files sink's probe holds: a few bytes that say what they are, should anyone find them. */
export const PROBE_BYTES = Buffer.from('ferry connection test probe: removed once written\n');

/** A store's message for `text`: `postgres "pg1": text`. */
export type StoreMessage = (text: string) => string;

/** Refuses a probe name that could not be used as it is on every store. */
export function checkProbeName(probeName: string, say: StoreMessage): void {
  if (!PROBE_NAME.test(probeName)) {
    throw new FerryError(
      'bad_request',
      say(
        `${JSON.stringify(probeName)} cannot name a connection test's probe: it takes lowercase letters, digits and underscores, at most 63`,
      ),
    );
  }
}

/** Hints by error code, for failures the connector's own mapping left without one. */
export type CheckHints = Partial<Record<ErrorCode, string>>;

/**
 * `err` with the hint its code has in `hints`, unless it carries one already (a refused root's
 * --allow-path hint); anything but a FerryError is passed on as it is.
 */
export function withHint(err: unknown, hints: CheckHints): unknown {
  if (!(err instanceof FerryError) || err.hint !== undefined) return err;
  const hint = hints[err.code];
  if (hint === undefined) return err;
  return new FerryError(err.code, err.message, { cause: err.cause, retryable: err.retryable, hint });
}

/**
 * A write the store refused (no right to create, a read-only server), said as such and never
 * retried: `postgres "pg1": writing is refused: permission denied for schema public (test write)`.
 * The code stays the connector's own, the one a copy meeting the same refusal would fail with.
 */
export function writeRefused(err: FerryError, say: StoreMessage, hint: string): FerryError {
  const prefix = say('');
  const what = err.message.startsWith(prefix) ? err.message.slice(prefix.length) : err.message;
  return new FerryError(err.code, say(`writing is refused: ${what}`), {
    cause: err.cause,
    retryable: false,
    hint,
  });
}

/** `1 entry`, `12 entries`. */
export function counted(n: number, one: string, many: string): string {
  return `${n} ${n === 1 ? one : many}`;
}

/**
 * How formats report failures. Bad data (a value a format cannot hold, a malformed file) is a
 * `bad_request` that is not retried: a second attempt would read the same bytes. A converter that
 * dies for no reason of the data's is `internal`, which is retried.
 */
import { FerryError } from '../common/errors.ts';

/** A value of a table column that the format being written cannot hold. */
export function valueError(format: string, column: string, value: string, why: string): FerryError {
  return new FerryError(
    'bad_request',
    `writing ${format}: column "${column}": value ${quoteValue(value)} ${why}`,
  );
}

/** A file read as a table that is not what its format says. `where` is `data/x.csv line 3`. */
export function fileError(what: string, where: string, why: string): FerryError {
  return new FerryError('bad_request', `${what}: ${where}: ${why}`);
}

export function cancelled(): FerryError {
  return new FerryError('cancelled', 'the attempt was cancelled');
}

/** A value for a message: JSON-quoted, and cut short so a 10 MB text does not become the message. */
export function quoteValue(value: string): string {
  return JSON.stringify(value.length > 60 ? `${value.slice(0, 60)}...` : value);
}

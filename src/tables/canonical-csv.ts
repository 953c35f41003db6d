/**
 * Reading and writing canonical CSV (src/tables/table-columns.ts): the one dialect tables travel
 * in. Records are arrays of field texts where `null` is NULL (an unquoted empty field) and `''` is an
 * empty string (`""`), so every format can tell the two apart.
 */
import type { Readable } from 'node:stream';
import { CsvError, parse } from 'csv-parse';
import { FerryError } from '../common/errors.ts';
import type { TableColumn } from './table-columns.ts';

export type CsvRecord = (string | null)[];

/**
 * The data records of a canonical CSV stream, after checking that its header names as many columns
 * as `columns`. Backpressure holds: the next chunk is read only when a record is asked for.
 */
export async function* canonicalRecords(
  canonical: Readable,
  columns: readonly TableColumn[],
): AsyncGenerator<CsvRecord> {
  const parser = canonical.pipe(
    parse({
      delimiter: ',',
      quote: '"',
      escape: '"',
      // An unquoted empty field is NULL; a quoted one (`""`) is an empty string.
      cast: (value, context) => (value === '' && !context.quoting ? null : value),
    }),
  );
  canonical.on('error', (err) => parser.destroy(err));
  let header = true;
  try {
    for await (const record of parser as AsyncIterable<CsvRecord>) {
      if (header) {
        header = false;
        if (record.length !== columns.length) {
          throw new FerryError(
            'internal',
            `the table stream's header has ${record.length} fields for ${columns.length} columns`,
          );
        }
        continue;
      }
      yield record;
    }
  } catch (err) {
    throw err instanceof CsvError
      ? new FerryError('internal', `malformed table stream: ${err.message}`)
      : err;
  } finally {
    // The encoder owns its input: stopped early (a bad value, a failed sink), it releases the source.
    parser.destroy();
    if (!canonical.readableEnded) canonical.destroy();
  }
}

/** One canonical CSV record, with its `\n`. */
export function canonicalRecord(values: readonly (string | null)[]): string {
  let line = '';
  for (let i = 0; i < values.length; i++) {
    if (i > 0) line += ',';
    const v = values[i];
    if (v !== null && v !== undefined) line += canonicalField(v);
  }
  return `${line}\n`;
}

const NEEDS_QUOTES = /[",\n\r]/;

/**
 * A non-NULL value as a canonical field: quoted when empty (else it would read as NULL), when it holds
 * a delimiter, quote or line break, and when it is `\.` (PostgreSQL's end-of-data marker).
 */
export function canonicalField(value: string): string {
  if (value === '' || value === '\\.') return `"${value}"`;
  if (!NEEDS_QUOTES.test(value)) return value;
  return `"${value.replaceAll('"', '""')}"`;
}

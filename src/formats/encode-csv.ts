/**
 * A table as CSV in the files sink's dialect (delimiter, quote, header, NULL text, character
 * encoding), from canonical CSV. NULL is written as the NULL text, unquoted; an empty string, and a
 * value equal to the NULL text, are always quoted, so a reader can tell them apart.
 */
import { Readable } from 'node:stream';
import { stringify, type Options as StringifyOptions } from 'csv-stringify/sync';
import type { TableColumn } from '../tables/table-columns.ts';
import { canonicalRecords, type CsvRecord } from '../tables/canonical-csv.ts';
import type { CompiledCsvOptions } from './file-format.ts';
import { valueError } from './format-errors.ts';

export interface EncodedRows {
  stream: Readable;
  rows(): number;
}

/** Records per csv-stringify call: large enough to amortise the call, small enough to stream. */
const BATCH = 1000;
/** Any character above U+00FF (latin1 holds U+0000 to U+00FF exactly). */
const NOT_LATIN1 = /[\u0100-\u{10ffff}]/u;

export function encodeCsv(
  columns: readonly TableColumn[],
  canonical: Readable,
  o: CompiledCsvOptions,
): EncodedRows {
  const options: StringifyOptions = {
    delimiter: o.delimiter,
    quote: o.quote,
    escape: o.quote,
    record_delimiter: '\n',
    cast: {
      string: (v: string) =>
        v === '' ? { value: v, quoted_empty: true } : v === o.nullValue ? { value: v, quoted: true } : v,
      // csv-stringify's own typings lack the null caster it calls for NULL fields.
      ...({ null: () => o.nullValue } as object),
    },
  };
  let rows = 0;
  async function* chunks(): AsyncGenerator<Buffer> {
    let batch: CsvRecord[] = [];
    if (o.header) {
      const names = columns.map((c) => c.name);
      if (o.encoding === 'latin1') checkLatin1(names, columns, true);
      batch.push(names);
    }
    for await (const record of canonicalRecords(canonical, columns)) {
      if (o.encoding === 'latin1') checkLatin1(record, columns, false);
      batch.push(record);
      rows++;
      if (batch.length >= BATCH) {
        yield Buffer.from(stringify(batch, options), o.encoding);
        batch = [];
      }
    }
    if (batch.length > 0) yield Buffer.from(stringify(batch, options), o.encoding);
  }
  return { stream: Readable.from(chunks(), { objectMode: false }), rows: () => rows };
}

/** Node's latin1 encoder writes `?`-like garbage for what it cannot hold; refuse instead. */
function checkLatin1(record: CsvRecord, columns: readonly TableColumn[], header: boolean): void {
  for (let i = 0; i < record.length; i++) {
    const v = record[i];
    if (v === null || v === undefined) continue;
    const bad = NOT_LATIN1.exec(v);
    if (!bad) continue;
    const ch = bad[0];
    const code = `U+${ch.codePointAt(0)!.toString(16).toUpperCase().padStart(4, '0')}`;
    const column = columns[i]?.name ?? `#${i + 1}`;
    throw valueError(
      'csv',
      column,
      v,
      `${header ? '(the column name) ' : ''}has "${ch}" (${code}), which the latin1 encoding cannot hold`,
    );
  }
}

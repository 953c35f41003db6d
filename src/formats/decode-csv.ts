/**
 * A CSV file in the source's dialect as a table: every column `text`, named by the header row (or
 * c1, c2, ... without one). An unquoted field equal to the NULL text is NULL; a quoted one is that
 * text. Malformed CSV fails with the file's name and line.
 */
import { Readable } from 'node:stream';
import { CsvError, parse } from 'csv-parse';
import type { TableColumn } from '../tables/table-columns.ts';
import { canonicalRecord, type CsvRecord } from '../tables/canonical-csv.ts';
import type { CompiledCsvOptions } from './file-format.ts';
import { fileError } from './format-errors.ts';
import type { FileToDecode, TableStream } from './decoder.ts';

/** Characters of canonical CSV gathered before a chunk is handed on. */
const CHUNK = 64 * 1024;

export async function decodeCsv(
  file: FileToDecode,
  o: CompiledCsvOptions,
  what: string,
): Promise<TableStream> {
  /** The line the record being parsed starts on: where an unterminated quote opened. */
  let line = 1;
  const parser = file.stream.pipe(
    parse({
      delimiter: o.delimiter,
      quote: o.quote,
      escape: o.quote,
      encoding: o.encoding,
      bom: true,
      cast: (value, context) => (!context.quoting && value === o.nullValue ? null : value),
      // Called as each record is parsed, ahead of the records the consumer has taken: the line
      // count here is still right when parsing fails before those are read.
      on_record: (record, context) => {
        line = context.lines + 1;
        return record;
      },
    }),
  );
  file.stream.on('error', (err) => parser.destroy(err));
  const records = parser[Symbol.asyncIterator]() as AsyncIterator<CsvRecord>;
  const next = async (): Promise<CsvRecord | undefined> => {
    try {
      const r = await records.next();
      return r.done ? undefined : r.value;
    } catch (err) {
      throw err instanceof CsvError ? csvError(err, file.name, line, what) : err;
    }
  };
  const release = (): void => {
    parser.destroy();
    if (!file.stream.readableEnded) file.stream.destroy();
  };

  let first: CsvRecord | undefined;
  let columns: TableColumn[];
  try {
    first = await next();
    columns = o.header ? headerColumns(first ?? [], file.name, what) : numberedColumns(first?.length ?? 0);
    if (o.header) first = undefined;
  } catch (err) {
    release();
    throw err;
  }

  let rows = 0;
  async function* chunks(): AsyncGenerator<string> {
    try {
      let out = columns.length > 0 ? canonicalRecord(columns.map((c) => c.name)) : '';
      if (first) {
        out += canonicalRecord(first);
        rows++;
      }
      for (let r = await next(); r !== undefined; r = await next()) {
        out += canonicalRecord(r);
        rows++;
        if (out.length >= CHUNK) {
          yield out;
          out = '';
        }
      }
      if (out.length > 0) yield out;
    } finally {
      release();
    }
  }
  return { columns, stream: Readable.from(chunks(), { objectMode: false }), rows: () => rows };
}

function headerColumns(names: CsvRecord, file: string, what: string): TableColumn[] {
  const seen = new Set<string>();
  return names.map((n, i) => {
    const name = n === null || n === '' ? `c${i + 1}` : n;
    if (seen.has(name)) throw fileError(what, `${file} line 1`, `the header names column "${name}" twice`);
    seen.add(name);
    return { name, type: 'text', nullable: true };
  });
}

function numberedColumns(count: number): TableColumn[] {
  return Array.from({ length: count }, (_, i) => ({ name: `c${i + 1}`, type: 'text', nullable: true }));
}

function csvError(err: CsvError, file: string, start: number, what: string): Error {
  if (err.code === 'CSV_QUOTE_NOT_CLOSED') {
    return fileError(
      what,
      `${file} line ${start}`,
      'malformed CSV: a quoted field is never closed (unterminated quote)',
    );
  }
  const at = typeof err['lines'] === 'number' ? err['lines'] : start;
  return fileError(what, `${file} line ${at}`, `malformed CSV: ${err.message}`);
}

/**
 * A files endpoint's format options (stores.ts FormatFields), compiled once: which encoding a table
 * is written in on a files sink, or read from on a files source.
 */
import { FileFormatOptions, type CsvOptionsT } from '../protocol/stores.ts';
import { validator } from '../protocol/validate.ts';
import { FerryError } from '../common/errors.ts';

export type FormatName = 'csv' | 'jsonl' | 'parquet';

export interface CompiledCsvOptions {
  header: boolean;
  delimiter: string;
  quote: string;
  nullValue: string;
  encoding: 'utf8' | 'utf16le' | 'latin1';
}

export interface CompiledFormat {
  format: FormatName;
  gzip: boolean;
  csv: CompiledCsvOptions;
  /** True when the CSV options are canonical CSV's own, so a table's bytes pass through untouched. */
  canonicalCsv: boolean;
}

const formatValidator = validator(FileFormatOptions);

function compileCsv(o: CsvOptionsT | undefined): CompiledCsvOptions {
  return {
    header: o?.header ?? true,
    delimiter: o?.delimiter ?? ',',
    quote: o?.quote ?? '"',
    nullValue: o?.nullValue ?? '',
    encoding: o?.encoding ?? 'utf8',
  };
}

/**
 * Dialects a reader could not parse back unambiguously: a NULL text that would need quoting (it is
 * written unquoted), a quote that is also the delimiter, a line break as delimiter or quote.
 */
function checkCsv(o: CompiledCsvOptions, what: string): void {
  const bad = (why: string): FerryError => new FerryError('bad_request', `${what}: csv: ${why}`);
  if (o.delimiter === o.quote) throw bad(`delimiter and quote are both ${JSON.stringify(o.quote)}`);
  if (/[\r\n]/.test(o.delimiter + o.quote)) throw bad('delimiter and quote cannot be line breaks');
  if ([o.delimiter, o.quote, '\n', '\r'].some((c) => o.nullValue.includes(c))) {
    throw bad(`nullValue ${JSON.stringify(o.nullValue)} holds a delimiter, quote or line break`);
  }
}

/**
 * The format of a files endpoint, from its options (other fields are ignored). `what` names the
 * endpoint in errors. Returns undefined when the options name no format (files as-is on a source;
 * canonical CSV for tables on a sink, see `sinkFormat`).
 */
export function compileFormat(options: Record<string, unknown>, what: string): CompiledFormat | undefined {
  const { format, compression, csv } = options;
  const o = formatValidator.parse({ format, compression, csv }, what);
  if (o.format === undefined) {
    if (o.compression !== undefined || o.csv !== undefined)
      return compileFormat({ ...options, format: 'csv' }, what);
    return undefined;
  }
  const compiled = compileCsv(o.csv);
  checkCsv(compiled, what);
  return {
    format: o.format,
    gzip: o.compression === 'gzip',
    csv: compiled,
    canonicalCsv:
      compiled.header &&
      compiled.delimiter === ',' &&
      compiled.quote === '"' &&
      compiled.nullValue === '' &&
      compiled.encoding === 'utf8',
  };
}

/** How a files sink writes tables: its format, or canonical CSV. */
export function sinkFormat(options: Record<string, unknown>, what: string): CompiledFormat {
  return compileFormat(options, what) ?? compileFormat({ format: 'csv' }, what)!;
}

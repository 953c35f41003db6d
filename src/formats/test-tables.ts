/**
 * Tables the format tests share (not a test file itself): a row of every logical type at its
 * awkward edges, helpers to build canonical CSV, and an encode -> decode round trip.
 */
import { Readable } from 'node:stream';
import { buffer, text } from 'node:stream/consumers';
import type { TableColumn } from '../tables/table-columns.ts';
import { canonicalRecord } from '../tables/canonical-csv.ts';
import { decodeTable, type DecodedTable } from './decode-table.ts';
import { encodeTable, type EncodedTable } from './encode-table.ts';
import { compileFormat, type CompiledFormat } from './file-format.ts';

export const signal = (): AbortSignal => new AbortController().signal;

export function format(options: Record<string, unknown>): CompiledFormat {
  return compileFormat(options, 'test sink')!;
}

export function canonical(columns: readonly TableColumn[], rows: readonly (string | null)[][]): string {
  return canonicalRecord(columns.map((c) => c.name)) + rows.map((r) => canonicalRecord(r)).join('');
}

/** Every byte value 0..255, as canonical binary text. */
export const ALL_BYTES = `\\x${Buffer.from(Array.from({ length: 256 }, (_, i) => i)).toString('hex')}`;
/** Emoji (a surrogate pair), a combining accent, quotes, delimiters and line breaks. */
export const AWKWARD_TEXT = 'naïve café 😀 e\u0301 "quoted", a;b \'x\' \\N \n second line\r\n third\ttab';

export const TYPED_COLUMNS: TableColumn[] = [
  { name: 'i16', type: 'int16', nullable: true },
  { name: 'i32', type: 'int32', nullable: true },
  { name: 'i64', type: 'int64', nullable: true },
  { name: 'f32', type: 'float32', nullable: true },
  { name: 'f64', type: 'float64', nullable: true },
  { name: 'dec', type: 'decimal', precision: 12, scale: 2, nullable: true },
  { name: 'big', type: 'decimal', nullable: true },
  { name: 'txt', type: 'text', nullable: true },
  { name: 'bin', type: 'binary', nullable: true },
  { name: 'd', type: 'date', nullable: true },
  { name: 'tm', type: 'time', nullable: true },
  { name: 'ts', type: 'timestamp', nullable: true },
  { name: 'tz', type: 'timestamptz', nullable: true },
  { name: 'j', type: 'json', nullable: true },
  { name: 'u', type: 'uuid', nullable: true },
  { name: 'ok', type: 'boolean', nullable: true },
];

/** Values whose text every format gives back as it was (floats in their shortest form). */
export const TYPED_ROWS: (string | null)[][] = [
  [
    '-32768',
    '-2147483648',
    '-9223372036854775808',
    '0.1',
    '-1.5e-07',
    '-9999999999.99',
    '-1234567890123456789012345678901234567890.0123456789',
    AWKWARD_TEXT,
    ALL_BYTES,
    '2024-02-29',
    '13:45:00.5',
    '2024-02-29 13:45:00.123456',
    '2024-02-29 13:45:00.5+00',
    '{"a":[1,2.50,"x"],"n":12345678901234567890}',
    'a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11',
    't',
  ],
  [
    '32767',
    '2147483647',
    '9223372036854775807',
    '3.4028235e+38',
    '1e+20',
    '0.00',
    '98765432109876543210987654321098765432109876543210',
    '',
    '\\x',
    '1970-01-01',
    '00:00:00',
    '1970-01-01 00:00:00',
    '1970-01-01 00:00:00+00',
    '[]',
    '00000000-0000-0000-0000-000000000000',
    'f',
  ],
  [null, null, null, 'NaN', 'Infinity', null, null, null, null, null, null, null, null, null, null, null],
  [null, null, null, null, '-Infinity', null, null, null, null, null, null, null, null, null, null, null],
];

export async function encode(
  columns: readonly TableColumn[],
  csv: string | Readable,
  f: CompiledFormat,
): Promise<{ encoded: EncodedTable; bytes: Buffer }> {
  const input = typeof csv === 'string' ? Readable.from([Buffer.from(csv)]) : csv;
  const encoded = encodeTable(columns, input, f, signal());
  return { encoded, bytes: await buffer(encoded.stream) };
}

export async function decode(
  name: string,
  bytes: Buffer | string,
  f: CompiledFormat,
): Promise<{ table: DecodedTable; csv: string }> {
  const table = await decodeTable(
    { name, stream: Readable.from([Buffer.from(bytes)]) },
    f,
    'test source "in"',
    signal(),
  );
  return { table, csv: await text(table.stream) };
}

/** columns + canonical CSV -> encode -> decode -> canonical CSV. */
export async function roundTrip(
  columns: readonly TableColumn[],
  csv: string,
  f: CompiledFormat,
): Promise<{ encoded: EncodedTable; bytes: Buffer; table: DecodedTable; csv: string }> {
  const { encoded, bytes } = await encode(columns, csv, f);
  const { table, csv: back } = await decode(`part-00000${encoded.extension}`, bytes, f);
  return { encoded, bytes, table, csv: back };
}

/** A canonical CSV stream of `rows` generated rows that counts how many it has produced. */
export function generated(
  rows: number,
  row: (i: number) => string,
  header: string,
): { stream: Readable; produced: () => number } {
  let produced = 0;
  function* lines(): Generator<string> {
    yield header;
    for (let i = 0; i < rows; i += 100) {
      let chunk = '';
      for (let k = i; k < Math.min(rows, i + 100); k++) chunk += row(k);
      produced = Math.min(rows, i + 100);
      yield chunk;
    }
  }
  return { stream: Readable.from(lines(), { objectMode: false }), produced: () => produced };
}

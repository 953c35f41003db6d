/**
 * A table as JSON lines: one object per row, keys = column names in column order, each value by its
 * column's logical type (docs/type-mapping.md). Exact types stay exact: integers are written as
 * JSON numbers copied from their text (never through a JS number, so int64 keeps every digit) and
 * decimals as strings.
 */
import { Readable } from 'node:stream';
import type { ColumnType, TableColumn } from '../tables/table-columns.ts';
import { canonicalRecords } from '../tables/canonical-csv.ts';
import type { EncodedRows } from './encode-csv.ts';
import { valueError } from './format-errors.ts';

/** Bytes of JSON text gathered before a chunk is handed on. */
const CHUNK = 64 * 1024;

const INTEGER = /^-?\d+$/;
/** JSON's number grammar: what may be copied as-is. */
const JSON_NUMBER = /^-?(0|[1-9]\d*)(\.\d+)?([eE][+-]?\d+)?$/;
const HEX_BYTES = /^\\x([0-9a-fA-F]{2})*$/;
const LINE_BREAKS = /[\r\n]/g;

type Render = (text: string, column: string) => string;

export function encodeJsonl(columns: readonly TableColumn[], canonical: Readable): EncodedRows {
  const keys = columns.map((c, i) => `${i === 0 ? '{' : ','}${JSON.stringify(c.name)}:`);
  const renders = columns.map((c) => renderFor(c.type));
  const names = columns.map((c) => c.name);
  let rows = 0;
  async function* chunks(): AsyncGenerator<string> {
    let out = '';
    for await (const record of canonicalRecords(canonical, columns)) {
      let line = columns.length === 0 ? '{' : '';
      for (let i = 0; i < record.length; i++) {
        const v = record[i];
        line += keys[i]! + (v === null || v === undefined ? 'null' : renders[i]!(v, names[i]!));
      }
      out += `${line}}\n`;
      rows++;
      if (out.length >= CHUNK) {
        yield out;
        out = '';
      }
    }
    if (out.length > 0) yield out;
  }
  return { stream: Readable.from(chunks(), { objectMode: false }), rows: () => rows };
}

function renderFor(type: ColumnType): Render {
  switch (type) {
    case 'int16':
    case 'int32':
    case 'int64':
      return (v, column) => {
        if (!INTEGER.test(v)) throw valueError('jsonl', column, v, `is not an ${type}`);
        return v.replace(/^(-?)0+(?=\d)/, '$1'); // JSON allows no leading zeros
      };
    case 'float32':
    case 'float64':
      return renderFloat;
    case 'boolean':
      return renderBoolean;
    case 'binary':
      return (v, column) => {
        if (!HEX_BYTES.test(v)) throw valueError('jsonl', column, v, 'is not binary in \\x hex form');
        // The canonical `\x` hex text, as in CSV: read back, it loads into bytea/BLOB as the same bytes.
        return `"\\\\x${v.slice(2).toLowerCase()}"`;
      };
    case 'json':
      return renderJson;
    case 'decimal': // a string: a JSON number would be read back through a double by most readers
    case 'text':
    case 'date':
    case 'time':
    case 'timestamp':
    case 'timestamptz':
    case 'uuid':
      return (v) => JSON.stringify(v);
  }
}

function renderFloat(v: string, column: string): string {
  if (JSON_NUMBER.test(v)) return v;
  if (v === 'NaN' || v === 'Infinity' || v === '-Infinity') return `"${v}"`;
  const n = Number(v); // `1.`, `.5`, `+1`: a number JSON spells otherwise
  if (v.trim() !== '' && Number.isFinite(n)) return String(n);
  throw valueError('jsonl', column, v, 'is not a floating point number');
}

function renderBoolean(v: string, column: string): string {
  if (v === 't' || v === 'true' || v === '1') return 'true';
  if (v === 'f' || v === 'false' || v === '0') return 'false';
  throw valueError('jsonl', column, v, 'is not a boolean');
}

function renderJson(v: string, column: string): string {
  try {
    JSON.parse(v);
  } catch {
    throw valueError('jsonl', column, v, 'is not a JSON document');
  }
  // A line break in a valid JSON document can only be whitespace between tokens (strings cannot
  // hold a raw one), so a space keeps the document and the one-line-per-row rule.
  return v.replace(LINE_BREAKS, ' ');
}

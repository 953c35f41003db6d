/**
 * A JSON lines file as a table. The columns are the first object's keys, typed by its values
 * (a decision, in docs/type-mapping.md): a string makes a `text` column, a number `decimal` (exact
 * for integers and fractions alike), true/false `boolean`, an object or array `json`, null `text`.
 * Numbers keep their source text (JSON.parse's reviver sees it), so a 20-digit integer is not
 * rounded through a double. Later lines may leave keys out (NULL) but may not add new ones.
 */
import { Readable } from 'node:stream';
import type { ColumnType, TableColumn } from '../tables/table-columns.ts';
import { canonicalRecord, type CsvRecord } from '../tables/canonical-csv.ts';
import { fileError } from './format-errors.ts';
import type { FileToDecode, TableStream } from './decoder.ts';

const CHUNK = 64 * 1024;

/** JSON.rawJSON and the reviver's source text: in Node 24, not yet in TypeScript's lib. */
interface RawJson {
  rawJSON(text: string): object;
  isRawJSON(value: unknown): boolean;
}
const RAW = JSON as unknown as RawJson;
const keepNumberText = (_key: string, value: unknown, context?: { source?: string }): unknown =>
  typeof value === 'number' && context?.source !== undefined ? RAW.rawJSON(context.source) : value;

type Row = Record<string, unknown>;

export async function decodeJsonl(file: FileToDecode, what: string): Promise<TableStream> {
  const lines = jsonLines(file.stream);
  const release = (): void => {
    if (!file.stream.readableEnded) file.stream.destroy();
  };
  const next = async (): Promise<[number, Row] | undefined> => {
    const r = await lines.next();
    return r.done ? undefined : [r.value[0], parseRow(r.value[1], `${file.name} line ${r.value[0]}`, what)];
  };

  let first: [number, Row] | undefined;
  try {
    first = await next();
  } catch (err) {
    await lines.return(undefined);
    release();
    throw err;
  }
  const columns: TableColumn[] = first
    ? Object.entries(first[1]).map(([name, value]) => ({ name, type: typeOf(value), nullable: true }))
    : [];
  const index = new Map(columns.map((c, i) => [c.name, i]));

  let rows = 0;
  const toRecord = ([line, row]: [number, Row]): CsvRecord => {
    const record: CsvRecord = new Array<string | null>(columns.length).fill(null);
    for (const [key, value] of Object.entries(row)) {
      const i = index.get(key);
      if (i === undefined) {
        throw fileError(
          what,
          `${file.name} line ${line}`,
          `key "${key}" is not a column (the columns are the keys of the first line)`,
        );
      }
      record[i] = canonicalText(value, columns[i]!.type);
    }
    return record;
  };
  async function* chunks(): AsyncGenerator<string> {
    try {
      if (!first) return;
      let out = canonicalRecord(columns.map((c) => c.name)) + canonicalRecord(toRecord(first));
      rows++;
      for (let r = await next(); r !== undefined; r = await next()) {
        out += canonicalRecord(toRecord(r));
        rows++;
        if (out.length >= CHUNK) {
          yield out;
          out = '';
        }
      }
      if (out.length > 0) yield out;
    } finally {
      await lines.return(undefined);
      release();
    }
  }
  return { columns, stream: Readable.from(chunks(), { objectMode: false }), rows: () => rows };
}

function typeOf(value: unknown): ColumnType {
  if (typeof value === 'string' || value === null) return 'text';
  if (typeof value === 'boolean') return 'boolean';
  if (RAW.isRawJSON(value)) return 'decimal';
  return 'json';
}

/** A value's canonical text: numbers as written, booleans as t/f in boolean columns, nested as JSON. */
function canonicalText(value: unknown, type: ColumnType): string | null {
  if (value === null) return null;
  // A json column holds documents: a string in one is the JSON string `"text"`, not `text`.
  if (type === 'json') return JSON.stringify(value);
  if (typeof value === 'string') return value;
  if (typeof value === 'boolean') return type === 'boolean' ? (value ? 't' : 'f') : String(value);
  return JSON.stringify(value);
}

function parseRow(text: string, where: string, what: string): Row {
  let value: unknown;
  try {
    value = JSON.parse(text, keepNumberText);
  } catch (err) {
    throw fileError(what, where, `not valid JSON (${err instanceof Error ? err.message : String(err)})`);
  }
  if (typeof value !== 'object' || value === null || Array.isArray(value) || RAW.isRawJSON(value)) {
    const kind =
      value === null
        ? 'null'
        : Array.isArray(value)
          ? 'an array'
          : RAW.isRawJSON(value)
            ? 'a number'
            : `a ${typeof value}`;
    throw fileError(what, where, `${kind}, not a JSON object (JSON lines holds one object per row)`);
  }
  return value as Row;
}

/** Non-blank lines, numbered from 1, split on `\n` bytes (never inside a UTF-8 character). */
async function* jsonLines(stream: Readable): AsyncGenerator<[number, string]> {
  let pending: Buffer[] = [];
  let line = 0;
  const emit = (): string => {
    let text = Buffer.concat(pending).toString('utf8');
    pending = [];
    if (line === 1 && text.charCodeAt(0) === 0xfeff) text = text.slice(1);
    return text.endsWith('\r') ? text.slice(0, -1) : text;
  };
  for await (const chunk of stream as AsyncIterable<Buffer>) {
    let start = 0;
    for (let nl = chunk.indexOf(10); nl !== -1; nl = chunk.indexOf(10, start)) {
      pending.push(chunk.subarray(start, nl));
      start = nl + 1;
      line++;
      const text = emit();
      if (text.trim() !== '') yield [line, text];
    }
    if (start < chunk.length) pending.push(chunk.subarray(start));
  }
  if (pending.length > 0) {
    line++;
    const text = emit();
    if (text.trim() !== '') yield [line, text];
  }
}

/**
 * The datasets the conformance suite stores, writes and compares, for both kinds of store, and the
 * small amount of canonical CSV handling it needs to compare rows as exact text.
 */
import { createHash, randomBytes } from 'node:crypto';
import { Readable } from 'node:stream';
import type { StagedObject } from '../connector.ts';
import type { TableColumn } from '../../tables/table-columns.ts';
import type { Dataset, FileSet, RowSet } from './conformance-harness.ts';

export type Kind = Dataset['kind'];

/** The columns of every table dataset: a key, and text with every awkward value canonical CSV has. */
export const COLUMNS: TableColumn[] = [
  { name: 'id', type: 'int64', nullable: false },
  { name: 'note', type: 'text', nullable: true },
];

/** An object of the right shape for a stage() call: a file, or a table partition with its header. */
export interface Staging {
  name: string;
  data: Buffer;
  columns?: TableColumn[];
  /** Rows in it, for a table partition. */
  rows?: number;
}

/** A few objects or rows that exercise names, sizes and values: the "read and write exact" dataset. */
export function sample(kind: Kind): Dataset {
  if (kind === 'files') {
    return files([
      ['a.txt', Buffer.from('hello, ferry\n')],
      // Several stream chunks, with an odd tail.
      ['nested/deeper/b.bin', randomBytes(3 * 1024 * 1024 + 17)],
      ['empty', Buffer.alloc(0)],
      ['dir with space/naïve.txt', Buffer.from('ünïcödé\n')],
    ]);
  }
  const rows = [
    '1,plain',
    '2,"he said ""hi"", then left"',
    '3,"two\nlines"',
    '4,""', // an empty string
    '5,', // NULL
    '6,naïve',
    '-9223372036854775808,smallest',
    '9223372036854775807,largest',
  ];
  for (let i = 7; i <= 200; i++) rows.push(`${i},row ${i}`);
  return table(rows);
}

/** Enough data that a read or a write is still going when the signal aborts. */
export function large(kind: Kind): Dataset {
  if (kind === 'files') return files([['big.bin', randomBytes(16 * 1024 * 1024)]]);
  const pad = 'x'.repeat(100);
  return table(Array.from({ length: 150_000 }, (_, i) => `${i + 1},${pad} ${i + 1}`));
}

/** What two attempts of one task write: the same names (files) or the same partition (rows). */
export function attemptOutput(kind: Kind, attempt: 1 | 2): Dataset {
  if (kind === 'files') {
    // The first is longer, so a second that only overwrote bytes in place would show its tail.
    const text = attempt === 1 ? 'first attempt, and longer' : 'second';
    return files([
      ['part.txt', Buffer.from(text)],
      ['sub/other.txt', Buffer.from(`${text} (other)`)],
    ]);
  }
  // A table task's rows are what its partition holds, whichever attempt reads them.
  return table(['1,one', '2,two', '3,three']);
}

export function empty(kind: Kind): Dataset {
  return kind === 'files' ? files([]) : table([]);
}

function files(entries: [string, Buffer][]): FileSet {
  return { kind: 'files', files: entries.map(([name, data]) => ({ name, data })) };
}

function table(rows: string[]): RowSet {
  return { kind: 'table', columns: COLUMNS, rows };
}

/** The dataset as stage() inputs: one per file, or one partition named for its task. */
export function stagings(data: Dataset, taskIndex: number): Staging[] {
  if (data.kind === 'files') return data.files.map((f) => ({ name: f.name, data: f.data }));
  return [
    {
      name: partName(taskIndex),
      data: Buffer.from(csvText(data.columns, data.rows)),
      columns: data.columns,
      rows: data.rows.length,
    },
  ];
}

/** How table sources name a partition's object, and table sinks the partition they record. */
export function partName(taskIndex: number): string {
  return `part-${String(taskIndex).padStart(5, '0')}`;
}

/** Canonical CSV with its header row. */
export function csvText(columns: readonly TableColumn[], rows: readonly string[]): string {
  return [columns.map((c) => c.name).join(','), ...rows].map((r) => `${r}\n`).join('');
}

/**
 * The records of canonical CSV text, split on newlines outside quotes; the text of each record is
 * kept as it is, so values compare exactly. A missing final newline is allowed.
 */
export function csvRecords(text: string): string[] {
  const records: string[] = [];
  let start = 0;
  let quoted = false;
  for (let i = 0; i < text.length; i++) {
    const c = text[i];
    if (c === '"') quoted = !quoted;
    else if (c === '\n' && !quoted) {
      records.push(text.slice(start, i));
      start = i + 1;
    }
  }
  if (start < text.length) records.push(text.slice(start));
  return records;
}

/** The values of one canonical CSV record: null for an unquoted empty field, else the text. */
export function csvFields(record: string): (string | null)[] {
  const fields: (string | null)[] = [];
  let i = 0;
  for (;;) {
    if (record[i] === '"') {
      let value = '';
      i++;
      for (;;) {
        const next = record.indexOf('"', i);
        if (next < 0) throw new Error(`unterminated quote in ${JSON.stringify(record)}`);
        value += record.slice(i, next);
        i = next + 1;
        if (record[i] !== '"') break;
        value += '"';
        i++;
      }
      fields.push(value);
    } else {
      const end = record.indexOf(',', i);
      const raw = end < 0 ? record.slice(i) : record.slice(i, end);
      fields.push(raw === '' ? null : raw);
      i = end < 0 ? record.length : end;
    }
    if (i >= record.length) return fields;
    i++; // the comma
  }
}

/** One canonical CSV record of values, quoted where PostgreSQL's COPY quotes them. */
export function csvRecord(values: readonly (string | null)[]): string {
  return values
    .map((v) => {
      if (v === null) return '';
      return v === '' || /[",\n\r]/.test(v) || v === '\\.' ? `"${v.replaceAll('"', '""')}"` : v;
    })
    .join(',');
}

/** Files sorted by name, rows sorted as text: the order `visible()` returns and comparisons use. */
export function normalised(data: Dataset): Dataset {
  if (data.kind === 'files') {
    return { kind: 'files', files: [...data.files].sort((a, b) => compare(a.name, b.name)) };
  }
  return { kind: 'table', columns: data.columns, rows: [...data.rows].sort(compare) };
}

/**
 * A comparable summary: file names with sizes and digests (so a mismatch in a 16 MiB file reads as
 * a line, not a hex dump), or the rows themselves.
 */
export function summary(data: Dataset): string[] {
  const n = normalised(data);
  if (n.kind === 'files') return n.files.map((f) => `${f.name} ${f.data.length} ${sha256(f.data)}`);
  return n.rows;
}

export function expectedStaged(s: Staging): StagedObject {
  return {
    name: s.name,
    bytes: s.data.length,
    sha256: sha256(s.data),
    ...(s.rows === undefined ? {} : { rows: s.rows }),
  };
}

export function sha256(data: Buffer): string {
  return createHash('sha256').update(data).digest('hex');
}

export function streamOf(data: Buffer): Readable {
  // Several chunks, so a stage sees a stream and not one buffer.
  const chunks: Buffer[] = [];
  for (let offset = 0; offset < data.length; offset += 64 * 1024)
    chunks.push(data.subarray(offset, offset + 64 * 1024));
  return Readable.from(chunks);
}

/**
 * A source that never ends, of the kind's data (random bytes, or CSV rows after a header). Calls
 * `pulled` with the bytes handed out so far, so a check can abort at a point the sink has reached.
 */
export function endless(kind: Kind, pulled: (bytes: number) => void): Readable {
  let sent = 0;
  let row = 0;
  return new Readable({
    read() {
      let chunk: Buffer;
      if (kind === 'files') chunk = randomBytes(64 * 1024);
      else {
        const lines: string[] = row === 0 ? [COLUMNS.map((c) => c.name).join(',')] : [];
        for (let i = 0; i < 500; i++) lines.push(`${++row},endless row ${row} ${'y'.repeat(100)}`);
        chunk = Buffer.from(lines.map((l) => `${l}\n`).join(''));
      }
      sent += chunk.length;
      this.push(chunk);
      pulled(sent);
    },
  });
}

function compare(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}

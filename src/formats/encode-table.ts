/**
 * Turns a table (columns + canonical CSV) into the bytes of a file in a files sink's format: CSV in
 * any dialect, JSON lines or Parquet, gzipped when asked. Canonical CSV without gzip passes through
 * untouched: the PostgreSQL-to-CSV fast path. Every path streams with backpressure, so memory stays
 * bounded whatever the table's size.
 */
import { pipeline, type Readable } from 'node:stream';
import { createGzip } from 'node:zlib';
import type { TableColumn } from '../tables/table-columns.ts';
import { encodeCsv, type EncodedRows } from './encode-csv.ts';
import { encodeJsonl } from './encode-jsonl.ts';
import { encodeParquet } from './encode-parquet.ts';
import { cancellable } from './cancellable.ts';
import type { CompiledFormat, FormatName } from './file-format.ts';

export interface EncodedTable {
  stream: Readable;
  /** What the object's name gets: `.csv`, `.jsonl.gz`, `.parquet`. */
  extension: string;
  /** False when the bytes are the canonical CSV as read. */
  converted: boolean;
  /** Rows written, known once the stream has ended; undefined when passed through uncounted. */
  rows(): number | undefined;
}

const EXTENSIONS: Record<FormatName, string> = { csv: '.csv', jsonl: '.jsonl', parquet: '.parquet' };

export function encodeTable(
  columns: readonly TableColumn[],
  canonical: Readable,
  format: CompiledFormat,
  signal: AbortSignal,
): EncodedTable {
  const extension = `${EXTENSIONS[format.format]}${format.gzip ? '.gz' : ''}`;
  if (format.format === 'csv' && format.canonicalCsv) {
    if (!format.gzip) return { stream: canonical, extension, converted: false, rows: () => undefined };
    // Already canonical: only compressed, not parsed, so not counted either.
    return {
      stream: cancellable(gzip(canonical), signal),
      extension,
      converted: true,
      rows: () => undefined,
    };
  }
  const encoded: EncodedRows =
    format.format === 'csv'
      ? encodeCsv(columns, canonical, format.csv)
      : format.format === 'jsonl'
        ? encodeJsonl(columns, canonical)
        : encodeParquet(columns, canonical, signal);
  const stream = format.gzip ? gzip(encoded.stream) : encoded.stream;
  return { stream: cancellable(stream, signal), extension, converted: true, rows: () => encoded.rows() };
}

/** The gzip stream fails with its input's error, and destroying it stops the input. */
function gzip(input: Readable): Readable {
  return pipeline(input, createGzip(), () => {});
}

/**
 * Turns a file from a files source into a table (columns + canonical CSV), when the source's options
 * set a format: CSV in the source's dialect, JSON lines or Parquet, gunzipped when the options say
 * gzip or the name ends in `.gz`. The table is named after the file without its extensions, so the
 * sink can give it its own (`orders.csv.gz` -> `orders` -> `orders.parquet`).
 */
import { pipeline, Readable } from 'node:stream';
import { createGunzip } from 'node:zlib';
import type { FilePeek } from '../tables/object-reads.ts';
import type { TableColumn } from '../tables/table-columns.ts';
import { decodeCsv } from './decode-csv.ts';
import { decodeJsonl } from './decode-jsonl.ts';
import { decodeParquet, describeParquet } from './decode-parquet.ts';
import { cancellable } from './cancellable.ts';
import type { CompiledFormat } from './file-format.ts';
import { cancelled, fileError } from './format-errors.ts';
import type { FileToDecode, TableStream } from './decoder.ts';

/** A decoded file: the same shape as a table partition a table source yields (SourceObject). */
export interface DecodedTable extends TableStream {
  name: string;
}

export interface DecodeOptions {
  /**
   * A path on this node holding the same bytes as the stream. A file in a format that is read whole
   * (readsWhole) is then read in place rather than spooled to a temporary file, and its stream is
   * closed unread; other files ignore it.
   */
  localPath?: string;
}

/**
 * Whether `name` in `format` is read whole, from a file on this node, rather than as a stream:
 * Parquet (read from its footer backwards) that is not gzipped. decodeTable spools such a file
 * unless it is given a local path to it.
 */
export function readsWhole(format: CompiledFormat, name: string): boolean {
  return format.format === 'parquet' && !isGzipped(format, name);
}

function isGzipped(format: CompiledFormat, name: string): boolean {
  return format.gzip || name.endsWith('.gz');
}

/**
 * Reads `file` as a table in `format`. Resolves once the columns are known (a header read, a first
 * line parsed, a Parquet footer read); the rows follow in the stream. `what` names the source in
 * errors (`filesystem source "in"`).
 */
export async function decodeTable(
  file: FileToDecode,
  format: CompiledFormat,
  what: string,
  signal: AbortSignal,
  options: DecodeOptions = {},
): Promise<DecodedTable> {
  if (signal.aborted) {
    file.stream.destroy();
    throw cancelled();
  }
  const gzipped = isGzipped(format, file.name);
  const bytes: FileToDecode = gzipped ? { name: file.name, stream: gunzip(file, what) } : file;
  const table =
    format.format === 'csv'
      ? await decodeCsv(bytes, format.csv, what)
      : format.format === 'jsonl'
        ? await decodeJsonl(bytes, what)
        : await decodeParquet(bytes, gzipped ? undefined : options.localPath, what, signal);
  return { name: tableName(file.name), ...table, stream: cancellable(table.stream, signal) };
}

/**
 * Only the columns of `file` read as a table in `format`; the file is closed once they are known.
 * A Parquet file that offers `peek` is described from its footer, without reading the rest.
 */
export async function describeTable(
  file: FileToDecode & { peek?: FilePeek },
  format: CompiledFormat,
  what: string,
  signal: AbortSignal,
): Promise<TableColumn[]> {
  if (readsWhole(format, file.name) && file.peek) {
    let columns: TableColumn[] | undefined;
    try {
      columns = await describeParquet(file.name, file.peek, what, signal);
    } catch (err) {
      file.stream.destroy();
      throw err;
    }
    if (columns) {
      file.stream.destroy();
      return columns;
    }
  }
  const table = await decodeTable(file, format, what, signal);
  table.stream.destroy();
  file.stream.destroy();
  return table.columns;
}

/** `dir/orders.csv.gz` -> `dir/orders`; a name without an extension stays as it is. */
export function tableName(fileName: string): string {
  const withoutGz = fileName.endsWith('.gz') ? fileName.slice(0, -3) : fileName;
  const slash = withoutGz.lastIndexOf('/');
  const dot = withoutGz.lastIndexOf('.');
  return dot > slash + 1 ? withoutGz.slice(0, dot) : withoutGz;
}

function gunzip(file: FileToDecode, what: string): Readable {
  const inflated = pipeline(file.stream, createGunzip(), () => {});
  async function* chunks(): AsyncGenerator<Buffer> {
    try {
      for await (const chunk of inflated) yield chunk as Buffer;
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code;
      if (typeof code === 'string' && code.startsWith('Z_')) {
        throw fileError(what, file.name, `not gzip data (${(err as Error).message})`);
      }
      throw err;
    }
  }
  return Readable.from(chunks(), { objectMode: false });
}

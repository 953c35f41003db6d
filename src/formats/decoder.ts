/**
 * What each format's decoder (decode-csv.ts, decode-jsonl.ts, decode-parquet.ts) is given and gives
 * back. decode-table.ts picks the decoder, gunzips its input and names the table; the decoders know
 * nothing of it.
 */
import type { Readable } from 'node:stream';
import type { TableColumn } from '../tables/table-columns.ts';

export interface FileToDecode {
  /** The file's name in its source, for the table's name and for messages. */
  name: string;
  stream: Readable;
}

export interface TableStream {
  columns: TableColumn[];
  /** Canonical CSV with a header row. */
  stream: Readable;
  /** Rows decoded, known once the stream has ended. */
  rows(): number | undefined;
  /**
   * Read in place (DecodeOptions.localPath, decode-table.ts): settles once no process reads the file
   * any more, after the stream ended or failed. The file's path must stay valid until then.
   */
  released?: Promise<void>;
}

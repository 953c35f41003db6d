/**
 * A table as one Parquet file, written by the converter process (duckdb-child.ts) from canonical
 * CSV, in row groups of at most 100,000 rows or 32 MB, each flushed as it fills: memory stays bounded
 * whatever the table's size. The schema comes from the columns (docs/type-mapping.md).
 */
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import type { Readable } from 'node:stream';
import { FerryError } from '../common/errors.ts';
import type { TableColumn } from '../tables/table-columns.ts';
import { runDuckdb } from './duckdb-job.ts';
import type { EncodedRows } from './encode-csv.ts';

export function encodeParquet(
  columns: readonly TableColumn[],
  canonical: Readable,
  signal: AbortSignal,
): EncodedRows {
  // The job's two FIFOs; removed once the job is over.
  const dir = mkdtempSync(path.join(tmpdir(), 'ferry-parquet-'));
  const run = runDuckdb(
    { kind: 'write-parquet', dir, columns: [...columns] },
    canonical,
    signal,
    (message) => new FerryError('bad_request', `writing parquet: ${message}`),
  );
  return { stream: run.output, rows: () => run.rows() ?? 0 };
}

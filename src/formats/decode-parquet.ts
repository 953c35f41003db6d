/**
 * A Parquet file as a table: columns and types from the file's schema (docs/type-mapping.md), rows
 * rendered as canonical CSV by the converter process (duckdb-child.ts).
 *
 * Parquet is read from its footer backwards, so the reader needs the whole file at hand. A file this
 * node can open by path is read in place; any other stream (object stores, a gzipped file) is first
 * spooled to a temporary file under os.tmpdir(), in the job's folder, which is deleted once the job
 * is over, whether it succeeded or not.
 */
import { createWriteStream } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { pipeline } from 'node:stream/promises';
import { FerryError } from '../common/errors.ts';
import { runDuckdb } from './duckdb-job.ts';
import { cancelled, fileError } from './format-errors.ts';
import type { FileToDecode, TableStream } from './decode-table.ts';

export async function decodeParquet(
  file: FileToDecode,
  localPath: string | undefined,
  what: string,
  signal: AbortSignal,
): Promise<TableStream> {
  const dir = await mkdtemp(path.join(tmpdir(), 'ferry-parquet-'));
  let source = localPath;
  try {
    if (source === undefined) {
      source = path.join(dir, 'source.parquet');
      await pipeline(file.stream, createWriteStream(source), { signal });
    } else {
      file.stream.destroy(); // read in place instead
    }
  } catch (err) {
    await rm(dir, { recursive: true, force: true });
    if (signal.aborted) throw cancelled();
    throw err instanceof FerryError
      ? err
      : new FerryError(
          'store_error',
          `${what}: ${file.name}: ${err instanceof Error ? err.message : String(err)}`,
          {
            cause: err,
          },
        );
  }
  const spooled = source;
  const run = runDuckdb({ kind: 'read-parquet', dir, file: spooled }, undefined, signal, (message) =>
    fileError(what, file.name, describe(message.replaceAll(spooled, file.name))),
  );
  const columns = await run.columns; // on failure the job is over and its folder is being removed
  return { columns, stream: run.output, rows: () => run.rows() };
}

function describe(message: string): string {
  if (/magic bytes/i.test(message))
    return 'not a Parquet file (it does not end with the Parquet magic bytes PAR1)';
  return message;
}

/**
 * A Parquet file as a table: columns and types from the file's schema (docs/type-mapping.md), rows
 * rendered as canonical CSV by the converter process (duckdb-child.ts).
 *
 * Parquet is read from its footer backwards, so the reader needs the whole file at hand. A file the
 * caller names by a path on this node (`localPath`) is read in place: the copy task names one for a
 * file from the filesystem source (the node's open descriptor of it, SourceObject.localPath) when
 * no rate limit is set. Any other stream is first spooled to a temporary file under os.tmpdir(), in
 * the job's folder, which is deleted once the job is over, whether it succeeded or not: a blob or an
 * S3 object, and a local file under a rate limit (the spooling is what the limit paces).
 *
 * Only the columns (the plan task, for a table a sink creates) need no more than the footer: read
 * at its position from a file that offers it (SourceObject.peek), into a sparse file of the same
 * size that holds nothing else, which DuckDB describes without reading a row (a describe job, after
 * which its converter is kept for the next job, as after any clean job).
 */
import { createWriteStream } from 'node:fs';
import { mkdtemp, open, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { pipeline } from 'node:stream/promises';
import { FerryError } from '../common/errors.ts';
import type { FilePeek } from '../tables/object-reads.ts';
import type { TableColumn } from '../tables/table-columns.ts';
import { runDuckdb } from './duckdb-job.ts';
import { cancelled, fileError } from './format-errors.ts';
import type { FileToDecode, TableStream } from './decoder.ts';

export async function decodeParquet(
  file: FileToDecode,
  localPath: string | undefined,
  what: string,
  signal: AbortSignal,
): Promise<TableStream> {
  let dir: string;
  try {
    dir = await mkdtemp(path.join(tmpdir(), 'ferry-parquet-'));
  } catch (err) {
    file.stream.destroy();
    throw spoolError(err, what, file.name);
  }
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
    throw spoolError(err, what, file.name);
  }
  const spooled = source;
  const run = runDuckdb({ kind: 'read-parquet', dir, file: spooled }, undefined, signal, (message) =>
    fileError(what, file.name, describe(message.replaceAll(spooled, file.name))),
  );
  let columns: TableColumn[];
  try {
    columns = await run.columns; // on failure the job is over and its folder is being removed
  } catch (err) {
    if (localPath !== undefined) await run.exited; // the caller may close the file once we throw
    throw err;
  }
  return {
    columns,
    stream: run.output,
    rows: () => run.rows(),
    ...(localPath !== undefined ? { released: run.exited } : {}),
  };
}

/** A failure to hold the file in the node's temporary folder, said plainly when the disk is full. */
function spoolError(err: unknown, what: string, name: string): FerryError {
  if (err instanceof FerryError) return err;
  if ((err as NodeJS.ErrnoException | undefined)?.code === 'ENOSPC') {
    return new FerryError(
      'store_error',
      `${what}: ${name}: no space left in this node's temporary folder ${tmpdir()} to hold the file while it is read (a Parquet file is read whole): free space there or point TMPDIR at a larger disk`,
      { cause: err },
    );
  }
  return new FerryError(
    'store_error',
    `${what}: ${name}: ${err instanceof Error ? err.message : String(err)}`,
    {
      cause: err,
    },
  );
}

const MAGIC = Buffer.from('PAR1');
/** A footer larger than this is read as the whole file is (it would be a schema of ~100,000 columns). */
const MAX_FOOTER = 64 * 1024 * 1024;

/**
 * The columns of the Parquet file `name`, from its footer alone: undefined when the footer is too
 * large to peek at (the caller reads the file). A file that is not Parquet fails as decodeParquet's.
 */
export async function describeParquet(
  name: string,
  peek: FilePeek,
  what: string,
  signal: AbortSignal,
): Promise<TableColumn[] | undefined> {
  const notParquet = (why: string): FerryError => fileError(what, name, `not a Parquet file (${why})`);
  const { size } = peek;
  if (size < 12) throw notParquet(`${size} bytes, fewer than the 12 a Parquet file has at least`);
  const tail = await peek.read(size - 8, 8);
  if (tail.length !== 8 || !tail.subarray(4).equals(MAGIC))
    throw fileError(what, name, describe('magic bytes'));
  const footerLength = tail.readUInt32LE(0);
  if (footerLength + 12 > size)
    throw notParquet(`its footer claims ${footerLength} bytes of a ${size}-byte file`);
  if (footerLength > MAX_FOOTER) return undefined;
  const footer = await peek.read(size - 8 - footerLength, footerLength);
  if (footer.length !== footerLength) throw notParquet('it ended while its footer was read');
  const dir = await mkdtemp(path.join(tmpdir(), 'ferry-parquet-'));
  const sparse = path.join(dir, 'footer.parquet');
  try {
    const file = await open(sparse, 'w');
    try {
      await file.write(MAGIC, 0, 4, 0);
      await file.write(footer, 0, footerLength, size - 8 - footerLength);
      await file.write(tail, 0, 8, size - 8);
    } finally {
      await file.close();
    }
  } catch (err) {
    await rm(dir, { recursive: true, force: true });
    throw new FerryError('internal', `describing ${name}: cannot write its footer: ${String(err)}`, {
      cause: err,
    });
  }
  const run = runDuckdb({ kind: 'describe-parquet', dir, file: sparse }, undefined, signal, (message) =>
    fileError(what, name, describe(message.replaceAll(sparse, name))),
  );
  try {
    return await run.columns;
  } finally {
    // Over once described: the converter waits, idle, for the copy tasks' jobs; the folder is removed.
    await run.exited;
  }
}

function describe(message: string): string {
  if (/magic bytes/i.test(message))
    return 'not a Parquet file (it does not end with the Parquet magic bytes PAR1)';
  if (/TProtocolException/.test(message))
    return `a corrupt Parquet file (its footer cannot be read: ${message})`;
  return message;
}

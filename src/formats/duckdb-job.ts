/**
 * Runs one Parquet conversion in a converter process (duckdb-child.ts explains why a process) and
 * hands its output on as a stream. The stream ends only once the converter has said it succeeded:
 * a converter that dies half-way must not pass for a short, valid-looking file.
 */
import { spawn } from 'node:child_process';
import { rm } from 'node:fs/promises';
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { fileURLToPath } from 'node:url';
import { FerryError } from '../common/errors.ts';
import type { TableColumn } from '../connectors/table-columns.ts';
import type { DuckdbJobSpec, DuckdbMessage } from './duckdb-child.ts';
import { cancelled } from './format-errors.ts';

const CHILD = fileURLToPath(new URL('./duckdb-child.ts', import.meta.url));
const STDERR_TAIL = 2000;

export interface DuckdbRun {
  /** What the converter writes; fails with the converter's error, ends only on its success. */
  output: Readable;
  /** The converter's description of the file it reads (read-parquet only). */
  columns: Promise<TableColumn[]>;
  /** Rows converted, once the output has ended. */
  rows(): number | undefined;
  /** Settles once the converter has exited and its folder is removed. */
  exited: Promise<void>;
}

/**
 * Starts the converter on `spec`, feeding it `input` (write-parquet). The run owns `spec.dir` from
 * now on and removes it once the converter has exited. `dataError` frames a message about the data
 * (a value, a file that is not Parquet) as the caller's FerryError.
 */
export function runDuckdb(
  spec: DuckdbJobSpec,
  input: Readable | undefined,
  signal: AbortSignal,
  dataError: (message: string) => FerryError,
): DuckdbRun {
  const child = spawn(process.execPath, [CHILD], {
    stdio: [input ? 'pipe' : 'ignore', 'pipe', 'pipe', 'ipc'],
  });
  let rows: number | undefined;
  let failure: FerryError | undefined;
  let inputError: unknown;
  let stderr = '';
  let resolveColumns: (c: TableColumn[]) => void = () => {};
  let rejectColumns: (e: unknown) => void = () => {};
  const columns = new Promise<TableColumn[]>((resolve, reject) => {
    resolveColumns = resolve;
    rejectColumns = reject;
  });
  columns.catch(() => {}); // write jobs never ask

  const kill = (): void => {
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
  };
  const onAbort = (): void => {
    failure ??= cancelled();
    kill();
  };
  if (signal.aborted) onAbort();
  else signal.addEventListener('abort', onAbort, { once: true });

  child.on('message', (m: DuckdbMessage) => {
    if (m.kind === 'columns') resolveColumns(m.columns);
    else if (m.kind === 'done') rows = m.rows;
    else
      failure ??= m.data
        ? dataError(m.message)
        : new FerryError('internal', `parquet converter: ${m.message}`);
  });
  child.stderr!.setEncoding('utf8');
  child.stderr!.on('data', (s: string) => {
    stderr = (stderr + s).slice(-STDERR_TAIL);
  });
  child.on('error', (err) => {
    failure ??= new FerryError('internal', `parquet converter could not start: ${err.message}`, {
      cause: err,
    });
  });
  // 'close' comes after the exit, the end of stdout and the IPC channel, so every message is in.
  const closed = new Promise<FerryError | undefined>((resolve) => {
    child.once('close', (code, sig) => {
      signal.removeEventListener('abort', onAbort);
      let outcome = failure;
      if (!outcome && inputError !== undefined) outcome = toError(inputError);
      if (!outcome && (code !== 0 || rows === undefined)) {
        const detail = stderr.trim() ? `: ${stderr.trim().split('\n').slice(-3).join(' | ')}` : '';
        outcome = new FerryError(
          'internal',
          `parquet converter exited with ${sig ?? `code ${code}`}${detail}`,
        );
      }
      rejectColumns(outcome ?? new FerryError('internal', 'parquet converter described no columns'));
      rm(spec.dir, { recursive: true, force: true }).then(
        () => resolve(outcome),
        () => resolve(outcome),
      );
    });
  });

  if (input) {
    pipeline(input, child.stdin!).catch((err: unknown) => {
      // The converter's own failure explains a broken pipe better than the pipe does.
      inputError ??= err;
      kill();
    });
  }
  child.send(spec);

  async function* relay(): AsyncGenerator<Buffer> {
    try {
      for await (const chunk of child.stdout!) yield chunk as Buffer;
      const outcome = await closed;
      if (outcome) throw outcome;
    } finally {
      kill(); // the consumer stopped early, or failed
    }
  }
  const output = Readable.from(relay(), { objectMode: false });
  // Destroyed before its first read, the generator never runs its finally: kill here too.
  output.once('close', kill);
  const exited = closed.then(() => undefined);
  return { output, columns, rows: () => rows, exited };
}

function toError(err: unknown): FerryError {
  if (err instanceof FerryError) return err;
  return new FerryError('internal', err instanceof Error ? err.message : String(err), { cause: err });
}

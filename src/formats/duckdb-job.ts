/**
 * Runs one Parquet conversion in a converter process (duckdb-child.ts explains why a process) and
 * hands its output on as a stream. The stream ends only once the converter has said it succeeded:
 * a converter that dies half-way must not pass for a short, valid-looking file.
 *
 * Converters are reused: one that finished a job cleanly waits, idle, for the next (at most
 * IDLE_CONVERTERS of them, each for IDLE_MS), since starting one costs as much CPU as converting
 * 100,000 rows. One that failed, was cancelled or was abandoned by its consumer is killed, never
 * reused. Idle converters do not keep the node's process alive.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync } from 'node:fs';
import { rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { Readable } from 'node:stream';
import { fileURLToPath } from 'node:url';
import { FerryError } from '../common/errors.ts';
import type { TableColumn } from '../connectors/table-columns.ts';
import type { DuckdbJobSpec, DuckdbMessage, DuckdbRequest } from './duckdb-child.ts';
import { cancelled } from './format-errors.ts';

const CHILD = fileURLToPath(new URL('./duckdb-child.ts', import.meta.url));
const STDERR_TAIL = 2000;
/** Converters kept waiting for a next job, and for how long. */
const IDLE_CONVERTERS = 4;
const IDLE_MS = 30_000;

export interface DuckdbRun {
  /** What the converter writes; fails with the converter's error, ends only on its success. */
  output: Readable;
  /** The converter's description of the file it reads (read-parquet only). */
  columns: Promise<TableColumn[]>;
  /** Rows converted, once the output has ended. */
  rows(): number | undefined;
  /** Settles once the job is over (the converter idle again, or exited) and its folder is removed. */
  exited: Promise<void>;
  /** The converter's process id. */
  pid: number | undefined;
}

/** A converter process and its spill folder (removed when it exits). */
interface Converter {
  child: ChildProcess;
  /** Settles once the process has exited and its folder is removed. */
  closed: Promise<void>;
  idleTimer?: NodeJS.Timeout;
}

const idle: Converter[] = [];

function startConverter(): Converter {
  const dir = mkdtempSync(path.join(tmpdir(), 'ferry-converter-'));
  const child = spawn(process.execPath, [CHILD, dir], { stdio: ['pipe', 'pipe', 'pipe', 'ipc'] });
  const converter: Converter = {
    child,
    closed: new Promise<void>((resolve) => {
      child.once('close', () => {
        const at = idle.indexOf(converter);
        if (at >= 0) idle.splice(at, 1);
        clearTimeout(converter.idleTimer);
        rm(dir, { recursive: true, force: true }).then(resolve, resolve);
      });
    }),
  };
  child.on('error', () => {}); // reported to the job through its own listener
  child.stdin!.on('error', () => {}); // a converter that died: its job reports why
  return converter;
}

function alive(c: Converter): boolean {
  return c.child.exitCode === null && c.child.signalCode === null && c.child.connected;
}

/** An idle converter, else a new one; held by the caller (it keeps the node alive while held). */
function takeConverter(): Converter {
  for (let c = idle.pop(); c !== undefined; c = idle.pop()) {
    clearTimeout(c.idleTimer);
    if (!alive(c)) continue;
    holdOpen(c, true);
    return c;
  }
  return startConverter();
}

/** Back to the idle list after a clean job, or killed when there are enough idle ones. */
function returnConverter(c: Converter): void {
  if (!alive(c) || idle.length >= IDLE_CONVERTERS) {
    kill(c);
    return;
  }
  holdOpen(c, false);
  c.idleTimer = setTimeout(() => kill(c), IDLE_MS);
  c.idleTimer.unref();
  idle.push(c);
}

function kill(c: Converter): void {
  if (c.child.exitCode === null && c.child.signalCode === null) c.child.kill('SIGKILL');
}

/** Whether the converter's process, channel and pipes keep the node's event loop alive. */
function holdOpen(c: Converter, held: boolean): void {
  const handles = [c.child, c.child.channel, c.child.stdin, c.child.stdout, c.child.stderr] as unknown as (
    { ref?: () => void; unref?: () => void } | null | undefined
  )[];
  for (const h of handles) (held ? h?.ref : h?.unref)?.call(h);
}

/**
 * Runs `spec` on a converter, feeding it `input` (write-parquet). The run owns `spec.dir` from now on
 * and removes it once the job is over. `dataError` frames a message about the data (a value, a file
 * that is not Parquet) as the caller's FerryError.
 */
export function runDuckdb(
  spec: DuckdbJobSpec,
  input: Readable | undefined,
  signal: AbortSignal,
  dataError: (message: string) => FerryError,
): DuckdbRun {
  const converter = takeConverter();
  const { child } = converter;
  let rows: number | undefined;
  /** The bytes the converter says it wrote, once it is done. */
  let doneBytes: number | undefined;
  let received = 0;
  let failure: FerryError | undefined;
  let inputError: unknown;
  let stderr = '';
  let finished = false;
  let resolveColumns: (c: TableColumn[]) => void = () => {};
  let rejectColumns: (e: unknown) => void = () => {};
  const columns = new Promise<TableColumn[]>((resolve, reject) => {
    resolveColumns = resolve;
    rejectColumns = reject;
  });
  columns.catch(() => {}); // write jobs never ask
  let resolveOver: () => void = () => {};
  const over = new Promise<void>((resolve) => (resolveOver = resolve));

  const output = new Readable({
    read() {
      child.stdout!.resume();
    },
  });

  /** Ends the job once: the output ended or failed, listeners off, converter reused or killed. */
  const finish = (outcome: FerryError | undefined): void => {
    if (finished) return;
    finished = true;
    signal.removeEventListener('abort', onAbort);
    child.off('message', onMessage);
    child.off('error', onError);
    child.off('close', onClose);
    child.stdout!.off('data', onData);
    child.stderr!.off('data', onStderr);
    input?.off('data', onInput);
    if (input && !input.readableEnded) input.destroy();
    rejectColumns(outcome ?? new FerryError('internal', 'parquet converter described no columns'));
    if (outcome) {
      kill(converter);
      output.destroy(outcome);
      void converter.closed.then(() => rm(spec.dir, { recursive: true, force: true })).then(resolveOver);
    } else {
      output.push(null);
      returnConverter(converter);
      void rm(spec.dir, { recursive: true, force: true }).then(resolveOver, resolveOver);
    }
  };
  const complete = (): void => {
    if (doneBytes !== undefined && received >= doneBytes) finish(undefined);
  };

  const onAbort = (): void => {
    failure ??= cancelled();
    finish(failure);
  };
  const onMessage = (m: DuckdbMessage): void => {
    if (m.kind === 'columns') resolveColumns(m.columns);
    else if (m.kind === 'done') {
      rows = m.rows;
      doneBytes = m.bytes;
      complete();
    } else
      failure ??= m.data
        ? dataError(m.message)
        : new FerryError('internal', `parquet converter: ${m.message}`);
  };
  const onData = (chunk: Buffer): void => {
    received += chunk.length;
    if (!output.push(chunk)) child.stdout!.pause();
    complete();
  };
  const onStderr = (s: string): void => {
    stderr = (stderr + s).slice(-STDERR_TAIL);
  };
  const onError = (err: Error): void => {
    failure ??= new FerryError('internal', `parquet converter could not start: ${err.message}`, {
      cause: err,
    });
  };
  // 'close' comes after the exit, the end of stdout and the IPC channel, so every message is in.
  const onClose = (code: number | null, sig: NodeJS.Signals | null): void => {
    let outcome = failure;
    if (!outcome && inputError !== undefined) outcome = toError(inputError);
    if (!outcome) {
      const detail = stderr.trim() ? `: ${stderr.trim().split('\n').slice(-3).join(' | ')}` : '';
      outcome = new FerryError('internal', `parquet converter exited with ${sig ?? `code ${code}`}${detail}`);
    }
    finish(outcome);
  };
  let sent = 0;
  const onInput = (chunk: Buffer | string): void => {
    const buf = typeof chunk === 'string' ? Buffer.from(chunk) : chunk;
    sent += buf.length;
    if (!child.stdin!.write(buf)) {
      input!.pause();
      child.stdin!.once('drain', () => input!.resume());
    }
  };

  // A failure nobody reads yet (a read job whose columns were refused) must not be an uncaught
  // 'error': the consumer's pipeline() or iteration still gets it.
  output.on('error', () => {});
  // Destroyed by its consumer before the end (stopped early, or failed): the converter is killed.
  output.once('close', () => {
    if (!finished) finish(failure ?? new FerryError('cancelled', 'the Parquet output was abandoned'));
  });
  if (signal.aborted) {
    onAbort();
  } else {
    signal.addEventListener('abort', onAbort, { once: true });
    child.on('message', onMessage);
    child.on('error', onError);
    child.once('close', onClose);
    child.stderr!.setEncoding('utf8');
    child.stderr!.on('data', onStderr);
    child.stdout!.on('data', onData);
    child.stdout!.resume(); // a reused converter's stdout may have been left paused
    child.send({ kind: 'job', spec } satisfies DuckdbRequest);
    if (input) {
      input.on('data', onInput);
      input.once('end', () => {
        if (!finished) child.send({ kind: 'input-end', bytes: sent } satisfies DuckdbRequest);
      });
      input.once('error', (err) => {
        // The converter's own failure explains a broken pipe better than the pipe does.
        inputError ??= err;
        finish(failure ?? toError(err));
      });
    }
  }
  return { output, columns, rows: () => rows, exited: over, pid: child.pid };
}

function toError(err: unknown): FerryError {
  if (err instanceof FerryError) return err;
  return new FerryError('internal', err instanceof Error ? err.message : String(err), { cause: err });
}

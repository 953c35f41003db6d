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
import { closeSync, constants, mkdtempSync, open, openSync } from 'node:fs';
import { rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { Socket } from 'node:net';
import { Readable } from 'node:stream';
import { fileURLToPath } from 'node:url';
import { pooledSocket, releaseChunk } from '../common/chunk-pool.ts';
import { FerryError } from '../common/errors.ts';
import type { TableColumn } from '../tables/table-columns.ts';
import type { DuckdbJobSpec, DuckdbMessage, DuckdbRequest } from './duckdb-child.ts';
import { cancelled } from './format-errors.ts';

const CHILD = fileURLToPath(new URL('./duckdb-child.ts', import.meta.url));
const STDERR_TAIL = 2000;
/** Converters kept waiting for a next job, and for how long. */
const IDLE_CONVERTERS = 4;
const IDLE_MS = 30_000;
/** Table bytes gathered into one write to the converter's input pipe (its default capacity). */
const GATHER_BYTES = 64 * 1024;

export interface DuckdbRun {
  /** What the converter writes; fails with the converter's error, ends only on its success. */
  output: Readable;
  /** The converter's description of the file it reads (read-parquet and describe-parquet). */
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
  const child = spawn(process.execPath, [CHILD, dir], { stdio: ['ignore', 'ignore', 'pipe', 'ipc'] });
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
  const handles = [c.child, c.child.channel, c.child.stderr] as unknown as (
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
  // A describe job has no output: it is over at `done`, and its output stream is empty.
  let outputEnded = spec.kind === 'describe-parquet';
  let failure: FerryError | undefined;
  let stderr = '';
  let finished = false;
  /** The node's ends of the job's pipes, once the converter is ready. */
  let toConverter: Socket | undefined;
  let fromConverter: Socket | undefined;
  /** The input FIFO while the node's open of it waits for DuckDB's. */
  let pendingInput: string | undefined;
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
      fromConverter?.resume();
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
    child.stderr!.off('data', onStderr);
    toConverter?.destroy();
    fromConverter?.destroy();
    // An open of the input still waiting for DuckDB's (the converter failed first) would hold a thread
    // of the pool forever: opening the other end ourselves lets it return.
    if (pendingInput !== undefined) {
      try {
        closeSync(openSync(pendingInput, constants.O_RDONLY | constants.O_NONBLOCK));
      } catch {
        // the folder is gone: the open failed on its own
      }
    }
    if (input && !input.readableEnded) input.destroy();
    rejectColumns(outcome ?? new FerryError('internal', 'parquet converter described no columns'));
    if (outcome) {
      kill(converter);
      output.destroy(outcome);
      void converter.closed
        .then(() => rm(spec.dir, { recursive: true, force: true }))
        .then(resolveOver, resolveOver);
    } else {
      output.push(null);
      returnConverter(converter);
      void rm(spec.dir, { recursive: true, force: true }).then(resolveOver, resolveOver);
    }
  };
  /** Fails the job with the first failure, the converter's own if it gave one. */
  const fail = (err: unknown): void => {
    failure ??= toError(err);
    finish(failure);
  };
  const complete = (): void => {
    if (outputEnded && rows !== undefined) finish(undefined);
  };

  /**
   * The node's ends of the pipes. The output is held open by the converter, so it opens at once,
   * non-blocking; `opened` then lets DuckDB start. The input opens through libuv's thread pool and
   * returns when DuckDB opens its end: then DuckDB is surely reading, and closing this end is the
   * EOF it waits for. An open still pending when the job ends is released by finish().
   */
  const connect = (ready: Extract<DuckdbMessage, { kind: 'ready' }>): void => {
    try {
      // Read into pool buffers: each read goes to the output as it is, for the sink to give back.
      fromConverter = pooledSocket(
        {
          fd: openSync(ready.output, constants.O_RDONLY | constants.O_NONBLOCK),
          readable: true,
          writable: false,
        },
        (chunk) => output.push(chunk),
      );
    } catch (err) {
      fail(new FerryError('internal', `parquet converter: cannot open its output: ${String(err)}`));
      return;
    }
    fromConverter.resume();
    // DuckDB starts only now (the protocol in duckdb-child.ts): its output cannot be gone already.
    child.send({ kind: 'opened' } satisfies DuckdbRequest);
    fromConverter.once('end', () => {
      outputEnded = true;
      complete();
    });
    fromConverter.on('error', fail);
    if (ready.input === undefined || !input) return;
    const fifo = ready.input;
    pendingInput = fifo;
    open(fifo, constants.O_WRONLY, (err, fd) => {
      pendingInput = undefined;
      if (finished) {
        if (!err) closeSync(fd);
        return;
      }
      if (err) {
        fail(new FerryError('internal', `parquet converter: cannot open its input: ${err.message}`));
        return;
      }
      feed(new Socket({ fd, readable: false, writable: true }));
    });
  };
  const feed = (sink: Socket): void => {
    toConverter = sink;
    sink.on('error', (err) => {
      // A pipe the converter no longer reads: its own failure, coming next, says why.
      if (!failure) setTimeout(() => fail(err), 1000).unref();
    });
    // A table stream comes in pieces of a few KiB (one socket read each): written one by one, they
    // cost a write(2) each, the node's largest cost in a profile. They are gathered while the socket
    // is corked and go in one writev(2) per GATHER_BYTES, or sooner when the socket's buffer is full.
    // Each chunk's pool buffer, if it has one, goes back once written (src/common/chunk-pool.ts).
    let gathered = 0;
    input!.on('data', (chunk: Buffer | string) => {
      if (gathered === 0) sink.cork();
      gathered += chunk.length;
      const more = sink.write(chunk, () => releaseChunk(chunk));
      if (gathered >= GATHER_BYTES || !more) {
        gathered = 0;
        sink.uncork();
      }
      if (!more) {
        input!.pause();
        sink.once('drain', () => input!.resume());
      }
    });
    // Closed, not only ended: a pipe has no half-close, and DuckDB sees EOF once no writer is left.
    // end() writes what is still corked first.
    input!.once('end', () => sink.end(() => sink.destroy()));
  };

  const onAbort = (): void => fail(cancelled());
  const onMessage = (m: DuckdbMessage): void => {
    if (m.kind === 'columns') resolveColumns(m.columns);
    else if (m.kind === 'ready') connect(m);
    else if (m.kind === 'done') {
      rows = m.rows;
      complete();
    } else
      failure ??= m.data
        ? dataError(m.message)
        : new FerryError('internal', `parquet converter: ${m.message}`);
  };
  const onStderr = (s: string): void => {
    stderr = (stderr + s).slice(-STDERR_TAIL);
  };
  const onError = (err: Error): void => {
    failure ??= new FerryError('internal', `parquet converter could not start: ${err.message}`, {
      cause: err,
    });
  };
  // 'close' comes after the exit and the end of the IPC channel, so every message is in.
  const onClose = (code: number | null, sig: NodeJS.Signals | null): void => {
    const detail = stderr.trim() ? `: ${stderr.trim().split('\n').slice(-3).join(' | ')}` : '';
    fail(
      failure ??
        new FerryError('internal', `parquet converter exited with ${sig ?? `code ${code}`}${detail}`),
    );
  };

  // A failure nobody reads yet (a read job whose columns were refused) must not be an uncaught
  // 'error': the consumer's pipeline() or iteration still gets it.
  output.on('error', () => {});
  // Destroyed by its consumer before the end (stopped early, or failed): the converter is killed.
  output.once('close', () => {
    if (!finished) fail(new FerryError('cancelled', 'the Parquet output was abandoned'));
  });
  // The source failing is the job failing (a broken table stream must not end the file short).
  input?.once('error', fail);
  if (signal.aborted) {
    onAbort();
  } else {
    signal.addEventListener('abort', onAbort, { once: true });
    child.on('message', onMessage);
    child.on('error', onError);
    child.once('close', onClose);
    child.stderr!.setEncoding('utf8');
    child.stderr!.on('data', onStderr);
    child.send({ kind: 'job', spec } satisfies DuckdbRequest);
  }
  return { output, columns, rows: () => rows, exited: over, pid: child.pid };
}

function toError(err: unknown): FerryError {
  if (err instanceof FerryError) return err;
  return new FerryError('internal', err instanceof Error ? err.message : String(err), { cause: err });
}

/**
 * Runs one task on this node: a plan (list files, find column bounds, prepare the sink), a copy of
 * one partition, or a finalize. A copy streams each object from the source into the sink's staging
 * place (a table encoded in the files sink's format on the way), counting rows and bytes on both
 * sides, then checks the attempt still holds its lease, then commits. Any failure aborts the
 * staging, so a failed or lost attempt leaves nothing in the sink.
 */
import { Transform, type Readable, type TransformCallback } from 'node:stream';
import { setTimeout as sleep } from 'node:timers/promises';
import type { PartitionT, TaskResultT, TaskSpecT, TaskOutputT } from '../protocol/task.ts';
import type {
  AttemptContext,
  ConnectorContext,
  SinkWriter,
  SourceConnector,
  SourceObject,
  StagedObject,
  StageInput,
} from '../connectors/connector.ts';
import type { DirectRead } from '../tables/object-reads.ts';
import type { UploadBudget } from '../common/upload-budget.ts';
import { compileFormat, sinkFormat, type CompiledFormat } from '../formats/file-format.ts';
import type { TableColumn } from '../tables/table-columns.ts';
import { decodeTable, describeTable, readsWhole } from '../formats/decode-table.ts';
import { encodeTable } from '../formats/encode-table.ts';
import { sinkFor, sourceFor } from './connector-registry.ts';
import { FerryError } from '../common/errors.ts';
import { pathProblem } from '../protocol/stores.ts';
import type { AssignedAttemptT } from '../protocol/agent.ts';

/** What a task runs as: the attempt as the dispatcher assigned it, its spec's secrets opened. */
/** What the node gives every attempt it runs: its signal, the roots it may touch, the upload budget. */
export interface NodeContext extends ConnectorContext {
  uploadBudget: UploadBudget;
}

export type TaskAttempt = Pick<AssignedAttemptT, 'attemptId' | 'taskId' | 'spec'>;

export interface ExecutionHooks {
  /** Cumulative rows and bytes read so far. */
  onProgress(rows: number, bytes: number): void;
  /** Throws if the attempt lost its lease: called right before the commit. */
  beforeCommit(): Promise<void>;
}

/** Counts bytes and, when asked, says how long to wait to hold them to a rate (bytes per second). */
class Pace {
  bytes = 0;
  readonly #rate: number | undefined;
  readonly #started = Date.now();
  readonly #tick: (n: number) => void;

  constructor(rate: number | undefined, tick: (n: number) => void) {
    this.#rate = rate;
    this.#tick = tick;
  }

  /** Counts `n` bytes; the milliseconds to wait before passing them on (0: at once). */
  count(n: number): number {
    this.bytes += n;
    this.#tick(n);
    if (this.#rate === undefined) return 0;
    return Math.max(0, this.#started + (this.bytes / this.#rate) * 1000 - Date.now());
  }
}

/** A stream's bytes through a Pace. */
class Meter extends Transform {
  readonly #pace: Pace;

  constructor(pace: Pace) {
    super();
    this.#pace = pace;
  }

  override _transform(chunk: Buffer, _enc: BufferEncoding, cb: TransformCallback): void {
    const due = this.#pace.count(chunk.length);
    if (due <= 0) return cb(null, chunk);
    sleep(due).then(
      () => cb(null, chunk),
      (err: unknown) => cb(err as Error),
    );
  }
}

/** Direct reads through a Pace; rereads are not counted again. */
function metered(direct: DirectRead, pace: Pace): DirectRead {
  const keep = direct.keep?.bind(direct);
  return {
    size: direct.size,
    async read(into, offset, length, position) {
      const n = await direct.read(into, offset, length, position);
      const due = pace.count(n);
      if (due > 0) await sleep(due);
      return n;
    },
    reread: (into, offset, length, position) => direct.reread(into, offset, length, position),
    unchanged: () => direct.unchanged(),
    ...(keep ? { keep } : {}),
  };
}

/**
 * A file read in place by another process through its path (SourceObject.localPath): kept open
 * until that process is done with it, its bytes counted and checked unchanged once it was read.
 */
class InPlace {
  readonly path: string;
  readonly #direct: DirectRead;
  readonly #pace: Pace;
  readonly #letGo: () => void;
  #released: Promise<void> = Promise.resolve();

  private constructor(path: string, direct: DirectRead, letGo: () => void, pace: Pace) {
    this.path = path;
    this.#direct = direct;
    this.#letGo = letGo;
    this.#pace = pace;
  }

  /** Holds `raw` open past its stream, if it offers both a path and keep(); else undefined. */
  static hold(raw: SourceObject, pace: Pace): InPlace | undefined {
    if (raw.localPath === undefined || !raw.direct?.keep) return undefined;
    return new InPlace(raw.localPath, raw.direct, raw.direct.keep(), pace);
  }

  /** When the reader is done with the path (TableStream.released); until then it stays open. */
  readBy(released: Promise<void> | undefined): void {
    if (released) this.#released = released;
  }

  /** After the last read: the whole file counted, then the same file as opened, or a retryable error. */
  async finish(): Promise<void> {
    try {
      await this.#released;
      this.#pace.count(this.#direct.size);
      await this.#direct.unchanged();
    } finally {
      this.#letGo();
    }
  }

  /** The copy failed: let go once the reader has stopped. */
  async abandon(): Promise<void> {
    await this.#released;
    this.#letGo();
  }
}

/**
 * The connectors' view of an attempt: its run and activity (which name it in a sink's ledger), its
 * task, and the task's place in the activity (which names a table's outputs).
 */
export function attemptContext(attempt: TaskAttempt, node: NodeContext): AttemptContext {
  const { spec } = attempt;
  return {
    signal: node.signal,
    allowedRoots: node.allowedRoots,
    uploadBudget: node.uploadBudget,
    runId: spec.runId,
    activity: spec.activity,
    taskId: attempt.taskId,
    attemptId: attempt.attemptId,
    taskIndex: spec.work.kind === 'copy' ? spec.work.index : 0,
    ...(spec.work.kind === 'copy' && spec.work.window ? { window: spec.work.window } : {}),
  };
}

/** Runs `attempt` with this node's signal and roots; `hooks` hear its progress and fence its commit. */
export async function executeTask(
  attempt: TaskAttempt,
  node: NodeContext,
  hooks: ExecutionHooks,
): Promise<TaskResultT> {
  const { spec } = attempt;
  // The service refuses these paths when a pipeline is applied; checked again where the work is
  // done, for a pipeline (or linked service) stored before it did.
  for (const [role, endpoint, what] of [
    ['source', spec.source, sourceWhat(spec)],
    ['sink', spec.sink, sinkWhat(spec)],
  ] as const) {
    const problem = pathProblem(role, endpoint.options) ?? pathProblem('properties', endpoint.properties);
    if (problem) throw new FerryError('bad_request', `${what}: ${problem}`);
  }
  const ctx = attemptContext(attempt, node);
  const work = spec.work;
  if (work.kind === 'plan') return planTask(spec, ctx, work.watermark ?? null);
  const sink = await sinkFor(spec.sink.type);
  if (work.kind === 'finalize') {
    await hooks.beforeCommit();
    await sink.finalize?.(spec.sink, ctx);
    return { kind: 'finalize' };
  }
  const source = await sourceFor(spec.source.type);
  const format = sink.accepts === 'files' ? sinkFormat(spec.sink.options, sinkWhat(spec)) : undefined;
  // A files source with a format yields tables; without one (and for table sources) undefined.
  const decodeFormat = compileFormat(spec.source.options, sourceWhat(spec));
  const writer: SinkWriter = await sink.open(spec.sink, ctx);
  // Taken as outputs after the commit: a sink may learn an object's sha256 only then (StagedObject).
  const staged: { object: StagedObject; rows?: number }[] = [];
  let bytesRead = 0;
  let rowsRead = 0;
  let rowsWritten = 0;
  let converted = false;
  /** The file being read in place, if one is. */
  let held: InPlace | undefined;
  // One rate for the whole task: a sink may read a small file only at commit, long after its stage.
  const pace = new Pace(spec.maxBytesPerSecond, (n) => {
    bytesRead += n;
    hooks.onProgress(rowsRead, bytesRead);
  });
  try {
    for await (const raw of source.read(spec.source, work.partition, ctx)) {
      // ---- direct: a file copied as-is into a sink that reads it into buffers of its own.
      if (raw.direct && writer.stageDirect && !raw.columns && !decodeFormat && sink.accepts === 'files') {
        try {
          staged.push({ object: await writer.stageDirect(raw.name, metered(raw.direct, pace)) });
        } finally {
          raw.stream.destroy(); // releases the file; its stream was never read (a sink may keep it)
        }
        hooks.onProgress(rowsRead, bytesRead);
        continue;
      }
      // ---- end direct
      // ---- in place: a local file the converter reads whole through its path, not spooled. Under a
      // rate limit it is spooled, through the meter: that is what the limit paces.
      const whole =
        !raw.columns &&
        decodeFormat &&
        readsWhole(decodeFormat, raw.name) &&
        spec.maxBytesPerSecond === undefined;
      held = whole ? InPlace.hold(raw, pace) : undefined;
      // ---- end in place
      let read: Readable = raw.stream;
      if (!held) {
        const meter = new Meter(pace);
        raw.stream.on('error', (err) => meter.destroy(err));
        read = raw.stream.pipe(meter);
      }
      // ---- decode: a file read as a table (src/formats/decode-table.ts), its bytes metered as read.
      let object: SourceObject = raw;
      if (!raw.columns && decodeFormat) {
        const decoded = await decodeTable(
          { name: raw.name, stream: read },
          decodeFormat,
          sourceWhat(spec),
          ctx.signal,
          held ? { localPath: held.path } : {},
        );
        held?.readBy(decoded.released);
        object = decoded;
        read = object.stream;
        converted = true; // bytes read are the file's, bytes written the table's
      }
      // ---- end decode
      let input: StageInput = { name: object.name, stream: read };
      let encodedRows: () => number | undefined = () => undefined;
      if (sink.accepts === 'table') {
        if (!object.columns) {
          object.stream.destroy();
          throw new FerryError(
            'bad_request',
            `the ${spec.source.type} source "${spec.source.linkedService}" yields files as-is; set its format (csv, jsonl, parquet) to load them into a table`,
          );
        }
        if (object.columns.length === 0) {
          // An empty JSON lines file: no columns, no rows, nothing a table could take.
          await drain(read);
          await held?.finish();
          held = undefined;
          continue;
        }
        input = { name: object.name, stream: read, columns: object.columns };
      } else if (object.columns && format) {
        const encoded = encodeTable(object.columns, read, format, ctx.signal);
        input = { name: `${object.name}${encoded.extension}`, stream: encoded.stream };
        encodedRows = () => encoded.rows();
        converted ||= encoded.converted;
      }
      const done = await writer.stage(input);
      await held?.finish();
      held = undefined;
      const rows = object.rows();
      if (rows !== undefined) rowsRead += rows;
      // What the sink says it wrote, else what the encoder wrote, else (bytes as-is) what was read.
      const written = done.rows ?? encodedRows() ?? rows;
      if (written !== undefined) rowsWritten += written;
      staged.push({ object: done, ...(written !== undefined ? { rows: written } : {}) });
      hooks.onProgress(rowsRead, bytesRead);
    }
    if (ctx.signal.aborted) throw new FerryError('cancelled', 'the attempt was cancelled');
    await hooks.beforeCommit();
    await writer.commit();
  } catch (err) {
    await held?.abandon();
    await writer.abort().catch(() => undefined);
    throw err;
  }
  const outputs: TaskOutputT[] = staged.map(({ object, rows }) => ({
    name: object.name,
    bytes: object.bytes,
    sha256: object.sha256,
    ...(rows !== undefined ? { rows } : {}),
  }));
  const bytesWritten = outputs.reduce((a, o) => a + o.bytes, 0);
  return {
    kind: 'copy',
    rowsRead,
    rowsWritten,
    bytesRead,
    bytesWritten,
    outputs,
    ...(converted ? { converted } : {}),
  };
}

/** The plan task: partitions from the source, then the sink's preparation (a table created). */
async function planTask(
  spec: TaskSpecT,
  ctx: AttemptContext,
  watermark: string | null,
): Promise<TaskResultT> {
  const source = await sourceFor(spec.source.type);
  const sink = await sinkFor(spec.sink.type); // fail the plan early if this node cannot write the sink
  if (sink.accepts === 'files') sinkFormat(spec.sink.options, sinkWhat(spec));
  const decodeFormat = compileFormat(spec.source.options, sourceWhat(spec)); // and a source's format
  const plan = await source.plan(spec.source, { ...ctx, watermark });
  let finalize = false;
  if (sink.prepare) {
    const columns =
      (await source.describe?.(spec.source, ctx)) ??
      (decodeFormat ? await describeFiles(source, spec, plan.partitions, decodeFormat, ctx) : undefined);
    finalize = (await sink.prepare(spec.sink, columns, ctx)).finalize;
  }
  return {
    kind: 'plan',
    partitions: plan.partitions,
    ...(plan.window ? { window: plan.window } : {}),
    ...(finalize ? { finalize } : {}),
  };
}

/**
 * The columns of files read as a table, for a sink that creates its table: those of the first file
 * that has any (a CSV header, the first JSON line's keys, a Parquet footer), read by the plan task
 * and closed as soon as they are known. undefined when no file has columns.
 */
async function describeFiles(
  source: SourceConnector,
  spec: TaskSpecT,
  partitions: readonly PartitionT[],
  format: CompiledFormat,
  ctx: AttemptContext,
): Promise<TableColumn[] | undefined> {
  for (const partition of partitions) {
    for await (const raw of source.read(spec.source, partition, ctx)) {
      const columns = await describeTable(raw, format, sourceWhat(spec), ctx.signal);
      if (columns.length > 0) return columns;
    }
  }
  return undefined;
}

function sourceWhat(spec: TaskSpecT): string {
  return `${spec.source.type} source "${spec.source.linkedService}"`;
}

async function drain(stream: Readable): Promise<void> {
  for await (const _chunk of stream) {
    // discard
  }
}

function sinkWhat(spec: TaskSpecT): string {
  return `${spec.sink.type} sink "${spec.sink.linkedService}"`;
}

/**
 * Runs one task on this node: a plan (list files, find column bounds) or a copy of one partition.
 * A copy streams each object from the source into the sink's staging place, counting bytes on both
 * sides, then checks the attempt still holds its lease, then commits. Any failure aborts the staging,
 * so a failed or lost attempt leaves nothing in the sink.
 */
import { Transform, type TransformCallback } from 'node:stream';
import { setTimeout as sleep } from 'node:timers/promises';
import type { TaskResultT, TaskSpecT, TaskOutputT } from '../protocol/task.ts';
import type { AttemptContext, SinkWriter } from '../connectors/connector.ts';
import { sinkFor, sourceFor } from './connector-registry.ts';
import { FerryError } from '../common/errors.ts';

export interface ExecutionHooks {
  /** Cumulative rows and bytes read so far. */
  onProgress(rows: number, bytes: number): void;
  /** Throws if the attempt lost its lease: called right before the commit. */
  beforeCommit(): Promise<void>;
}

/** Counts bytes and, when asked, holds the stream to a rate (bytes per second). */
class Meter extends Transform {
  bytes = 0;
  readonly #rate: number | undefined;
  readonly #started = Date.now();
  readonly #tick: (n: number) => void;

  constructor(rate: number | undefined, tick: (n: number) => void) {
    super();
    this.#rate = rate;
    this.#tick = tick;
  }

  override _transform(chunk: Buffer, _enc: BufferEncoding, cb: TransformCallback): void {
    this.bytes += chunk.length;
    this.#tick(chunk.length);
    if (this.#rate === undefined) return cb(null, chunk);
    const due = this.#started + (this.bytes / this.#rate) * 1000 - Date.now();
    if (due <= 0) return cb(null, chunk);
    sleep(due).then(
      () => cb(null, chunk),
      (err: unknown) => cb(err as Error),
    );
  }
}

export async function executeTask(
  spec: TaskSpecT,
  ctx: AttemptContext,
  hooks: ExecutionHooks,
): Promise<TaskResultT> {
  const source = sourceFor(spec.source.type);
  if (spec.work.kind === 'plan') {
    sinkFor(spec.sink.type); // fail the plan early if this node cannot write the sink
    return { kind: 'plan', partitions: await source.plan(spec.source, ctx) };
  }
  const partition = spec.work.partition;
  const writer: SinkWriter = await sinkFor(spec.sink.type).open(spec.sink, ctx);
  const outputs: TaskOutputT[] = [];
  let bytesRead = 0;
  let rowsRead = 0;
  try {
    for await (const object of source.read(spec.source, partition, ctx)) {
      const meter = new Meter(spec.maxBytesPerSecond, (n) => {
        bytesRead += n;
        hooks.onProgress(rowsRead, bytesRead);
      });
      object.stream.on('error', (err) => meter.destroy(err));
      const staged = await writer.stage(object.name, object.stream.pipe(meter));
      const rows = object.rows();
      if (rows !== undefined) rowsRead += rows;
      outputs.push({
        name: staged.name,
        bytes: staged.bytes,
        sha256: staged.sha256,
        ...(rows !== undefined ? { rows } : {}),
      });
      hooks.onProgress(rowsRead, bytesRead);
    }
    if (ctx.signal.aborted) throw new FerryError('cancelled', 'the attempt was cancelled');
    await hooks.beforeCommit();
    await writer.commit();
  } catch (err) {
    await writer.abort().catch(() => undefined);
    throw err;
  }
  const bytesWritten = outputs.reduce((a, o) => a + o.bytes, 0);
  // Objects rendered by the source (a CSV of a table partition) hold exactly the rows it counted.
  return { kind: 'copy', rowsRead, rowsWritten: rowsRead, bytesRead, bytesWritten, outputs };
}

/**
 * A file read directly (SourceObject.direct) uploaded to an object store in parts, from its ranges.
 *
 * A file smaller than WHOLE_READ_BELOW is read whole into a pooled pair and sent as one part. A
 * larger one is cut into parts of the sink's size (larger, when the store's part count would not
 * hold the file: partSizeFor), RANGES_IN_FLIGHT sent at once, each streamed straight from its range
 * of the file while it is sent (RangeSend), so a part in flight holds two 256 KiB buffers rather
 * than its whole size. Its sha256 comes from reading it once more, in order, meanwhile (from the
 * page cache). Either way the file must not have changed by the end (DirectRead.unchanged): what is
 * published is one version of it.
 *
 * Many requests in flight are cheaper for the store than a few large ones held in memory: Azurite
 * spends 7.0-9.2 s of CPU on a GiB in 16 MiB blocks with 16 in flight against 8.3-10.3 s with 3
 * (bench/README.md, files-to-blob).
 */
import type { Hash } from 'node:crypto';
import { Readable, type Writable } from 'node:stream';
import type { BufferPool } from '../../common/buffer-pool.ts';
import type { DirectRead } from '../../tables/object-reads.ts';
import { partSizeFor, type PartBody, type PartLimits, type PartUploads } from './part-uploads.ts';
import { RANGE_CHUNK, RANGE_PAIRS, WHOLE_READ_BELOW, changedError, readWhole } from './range-pairs.ts';
import type { UploadBudget } from '../../common/upload-budget.ts';

/** Parts of one file read directly that are sent at once. */
const RANGES_IN_FLIGHT = 16;

export interface DirectUpload {
  direct: DirectRead;
  /** The node's budget: the range pairs come from it. */
  budget: UploadBudget;
  /** Size of every part but the last; larger for a file the store's part count would not hold. */
  partSize: number;
  limits: PartLimits;
  uploads: PartUploads;
  /** Takes every byte of the file, in order. */
  hash: Hash;
  signal: AbortSignal;
  /** Ends the stage with `error`, from outside a request (a read failing under a part being sent). */
  stop: (error: unknown) => void;
  /** The sink's message about the file (`azure-blob "lake": a.bin <text> (stage)`). */
  message: (text: string) => string;
  /** Uploads part `index` (0-based) of `length` bytes. */
  send: (index: number, body: PartBody, length: number) => Promise<unknown>;
}

/** Uploads a file read directly in parts (see the top of this file); returns its size. */
export async function uploadDirect(o: DirectUpload): Promise<number> {
  const { direct, signal } = o;
  const pairs = o.budget.pool(RANGE_PAIRS);
  const changed = (): Promise<unknown> => changedError(direct, o.message);
  if (direct.size < WHOLE_READ_BELOW) {
    const pair = await pairs.take(signal);
    let give = (): void => pairs.give(pair);
    try {
      const whole = await readWhole(direct, pair, 'read', o.message);
      const filled = whole.length;
      o.hash.update(whole);
      if (filled > 0) {
        const done = give;
        give = () => {}; // the upload gives it back
        await o.uploads.add(() => o.send(0, { buffer: whole }, filled), done, 1);
      }
      await o.uploads.finish();
      return filled;
    } finally {
      give();
    }
  }
  const partSize = partSizeFor(direct.size, o.partSize, o.limits, o.message);
  const hashed = hashInOrder(direct, o.hash, pairs, signal);
  hashed.catch(o.stop);
  for (let index = 0, start = 0; start < direct.size; index++, start += partSize) {
    const length = Math.min(partSize, direct.size - start);
    const range = new RangeSend(direct, pairs, await pairs.take(signal), start, length, async (err) =>
      o.stop(err ?? (await changed())),
    );
    const part = index;
    await o.uploads.add(
      () => o.send(part, { body: () => range.body() }, length),
      () => range.release(),
      RANGES_IN_FLIGHT,
    );
  }
  await o.uploads.finish();
  await hashed;
  await direct.unchanged();
  return direct.size;
}

/** The object read once more from the start, in order, into `hash`, through one pooled buffer. */
async function hashInOrder(
  direct: DirectRead,
  hash: Hash,
  pairs: BufferPool,
  signal: AbortSignal,
): Promise<void> {
  const buffer = await pairs.take(signal);
  try {
    for (let at = 0, n = 1; n > 0 && at < direct.size; at += n) {
      signal.throwIfAborted();
      n = await direct.reread(buffer, 0, Math.min(buffer.length, direct.size - at), at);
      hash.update(buffer.subarray(0, n));
    }
  } finally {
    pairs.give(buffer);
  }
}

/**
 * One part sent straight from a range of a file read directly. The range goes out in RANGE_CHUNK
 * pieces through the two halves of a pooled pair: one half is read into while the other is being
 * sent, and a half is read into again only once the request has taken it (its write callback), so
 * a part in flight holds 512 KiB, not its whole size. Every try of the request pipes a body into
 * it; a body's sending starts once the one before it is over, so no two share the buffers, and it
 * rereads what an earlier try had read (those bytes were counted already). A read that fails or
 * ends early is reported to `fail` (with undefined for ending early), which stops the whole stage.
 */
class RangeSend {
  readonly #direct: DirectRead;
  readonly #pairs: BufferPool;
  readonly #pair: Buffer;
  readonly #start: number;
  readonly #length: number;
  readonly #fail: (error: unknown) => void;
  /** The latest sending, over when it no longer touches the pair. */
  #last: Promise<void> = Promise.resolve();
  /** Where the bytes counted so far end: read() up to there, reread() below it. */
  #readTo: number;

  constructor(
    direct: DirectRead,
    pairs: BufferPool,
    pair: Buffer,
    start: number,
    length: number,
    fail: (error: unknown) => void,
  ) {
    this.#direct = direct;
    this.#pairs = pairs;
    this.#pair = pair;
    this.#start = start;
    this.#length = length;
    this.#fail = fail;
    this.#readTo = start;
  }

  body(): Readable {
    return new RangeBody((dest) => {
      const after = this.#last;
      this.#last = after.then(() => this.#send(dest)).catch((err: unknown) => this.#fail(err));
      return this.#last;
    });
  }

  /** Gives the pair back once the last sending is over (a body never piped never used it). */
  release(): void {
    void this.#last.then(() => this.#pairs.give(this.#pair));
  }

  async #send(dest: Writable): Promise<void> {
    let closed = false;
    let onClose!: () => void;
    const closing = new Promise<void>((resolve) => {
      onClose = () => {
        closed = true;
        resolve();
      };
    });
    dest.once('close', onClose);
    const halves = [this.#pair.subarray(0, RANGE_CHUNK), this.#pair.subarray(RANGE_CHUNK)];
    let sending: Promise<void> | undefined;
    try {
      for (let at = this.#start, end = at + this.#length, i = 0; at < end; i++) {
        const half = halves[i & 1]!;
        const again = at < this.#readTo;
        const length = Math.min(half.length, (again ? this.#readTo : end) - at);
        let n: number;
        try {
          n = again
            ? await this.#direct.reread(half, 0, length, at)
            : await this.#direct.read(half, 0, length, at);
        } catch (err) {
          return this.#fail(err);
        }
        if (n === 0) return this.#fail(undefined);
        if (!again) this.#readTo = at + n;
        if (sending) await Promise.race([sending, closing]);
        if (closed) return;
        at += n;
        sending = new Promise<void>((resolve) => dest.write(half.subarray(0, n), () => resolve()));
      }
      if (sending) await Promise.race([sending, closing]);
      if (!closed) dest.end();
    } finally {
      // A half still being sent is not read into again until the request has it or is gone.
      if (sending && !closed) await Promise.race([sending, closing]);
      dest.removeListener('close', onClose);
    }
  }
}

/**
 * A request body an SDK pipes into its request: `pipe()` hands the request to `send`, which writes
 * to it directly, so the body knows when each chunk has been taken. Nothing may stand between the
 * body and the request (an upload progress stream would take chunks before they were sent). The
 * body is destroyed (and closes, which an SDK may wait for) once `send` is over; piped again (a
 * request tried again), it sends again.
 */
class RangeBody extends Readable {
  readonly #send: (dest: Writable) => Promise<void>;

  constructor(send: (dest: Writable) => Promise<void>) {
    super({ read() {} });
    this.#send = send;
  }

  override pipe<T extends NodeJS.WritableStream>(destination: T): T {
    void this.#send(destination as unknown as Writable).finally(() => this.destroy());
    return destination;
  }
}

/**
 * What the object-store sinks (Azure Blob, S3) share to upload an object in parts, from a stream
 * (uploadStream) or from a file read directly (SourceObject.direct, uploadDirect), and to bound the
 * memory their uploads hold in the whole node.
 *
 * A file smaller than WHOLE_READ_BELOW is read whole into a pooled buffer and sent as one part. A
 * larger one is cut into parts of the sink's size (larger, when the store's part count would not
 * hold the file: partSizeFor), RANGES_IN_FLIGHT sent at once, each streamed straight from its range
 * of the file while it is sent (RangeSend), so a part in flight holds two 256 KiB buffers rather
 * than its whole size. Its sha256 comes from reading it once more, in order,
 * meanwhile (from the page cache). Either way the file must not have changed by the end
 * (DirectRead.unchanged): what is published is one version of it. A sink may instead hold a small
 * file open until commit and read and put it whole then (HeldFile): one request where staging takes
 * two or three, which is what limits a store taking many small files.
 *
 * Many requests in flight are cheaper for the store than a few large ones held in memory: Azurite
 * spends 7.0-9.2 s of CPU on a GiB in 16 MiB blocks with 16 in flight against 8.3-10.3 s with 3
 * (bench/README.md, files-to-blob).
 */
import { createHash, type Hash } from 'node:crypto';
import { Readable, type Writable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { FerryError } from '../common/errors.ts';
import type { DirectRead } from '../tables/object-reads.ts';

/** Parts of one file read directly that are sent at once. */
const RANGES_IN_FLIGHT = 16;
/** A range goes out in pieces of this size, through two buffers: one read into, one being sent. */
const RANGE_CHUNK = 256 * 1024;
/**
 * Range buffer pairs in the whole node (16 MiB, one slab): one per range being sent, per hash pass,
 * and per small file read whole, whichever sink they serve.
 */
const NODE_RANGES = 32;
/** A file read directly and smaller than this is read whole into one pair and sent as one part. */
export const WHOLE_READ_BELOW = 2 * RANGE_CHUNK;

/**
 * Buffers shared by every upload in the node: `count` of `size` bytes cut from one slab, reused once
 * their upload is over, and dropped when no upload holds any. This bounds what uploads hold whatever
 * the number of tasks running at once (an upload waits for a free buffer), and fresh buffers would be
 * garbage the moment they are sent, piling up outside V8's heap until a full collection. A slab above
 * glibc's largest mmap threshold (32 MiB) is its own mapping, returned to the system whole when
 * dropped; separate large buffers would come from the heap once the threshold had adapted, and the
 * process would keep that memory. A slab is made only when an upload needs it.
 */
export class BufferPool {
  readonly #free: Buffer[] = [];
  readonly #waiting: ((block: Buffer) => void)[] = [];
  readonly #count: number;
  readonly #size: number;
  #slab: Buffer | undefined;

  constructor(count: number, size: number) {
    this.#count = count;
    this.#size = size;
  }

  async take(signal: AbortSignal): Promise<Buffer> {
    if (!this.#slab) {
      const size = this.#size;
      this.#slab = Buffer.allocUnsafeSlow(this.#count * size);
      for (let i = this.#count - 1; i >= 0; i--)
        this.#free.push(this.#slab.subarray(i * size, (i + 1) * size));
    }
    const free = this.#free.pop();
    if (free) return free;
    signal.throwIfAborted();
    return new Promise<Buffer>((resolve, reject) => {
      const give = (block: Buffer): void => {
        signal.removeEventListener('abort', onAbort);
        resolve(block);
      };
      const onAbort = (): void => {
        this.#waiting.splice(this.#waiting.indexOf(give), 1);
        reject(signal.reason instanceof Error ? signal.reason : new Error('aborted'));
      };
      signal.addEventListener('abort', onAbort, { once: true });
      this.#waiting.push(give);
    });
  }

  give(block: Buffer): void {
    const next = this.#waiting.shift();
    if (next) return next(block);
    this.#free.push(block);
    // Every buffer is back: no upload is running, and an idle node keeps none.
    if (this.#free.length === this.#count) {
      this.#free.length = 0;
      this.#slab = undefined;
    }
  }
}

const rangePool = new BufferPool(NODE_RANGES, 2 * RANGE_CHUNK);

/**
 * The signal of one stage's uploads: aborted when the attempt is, or when the stage fails for any
 * reason, so no part keeps uploading. Work outside a request can end the stage (a file read failing
 * under a part being sent): what it was stopped for is then the stage's error, not the aborted
 * requests'.
 */
export class StageSignal {
  readonly signal: AbortSignal;
  readonly #local = new AbortController();
  #stopped: { error: unknown } | undefined;

  constructor(attempt: AbortSignal) {
    this.signal = AbortSignal.any([attempt, this.#local.signal]);
  }

  /** Ends the stage with `error` (the first one given wins). */
  readonly stop = (error: unknown): void => {
    this.#stopped ??= { error };
    this.#local.abort();
  };

  /** Aborts what still uploads; the error the stage failed with: what stopped it, else `err`. */
  fail(err: unknown): unknown {
    this.#local.abort();
    return this.#stopped ? this.#stopped.error : err;
  }
}

/** The parts of one object: a limited number uploading at once, the first failure kept. */
export class PartUploads {
  readonly #inFlight = new Set<Promise<void>>();
  #failure: { error: unknown } | undefined;

  /**
   * Starts `send`; waits first while `limit` parts are uploading, so the reader is held back.
   * `done` is called once the upload is over, whatever its outcome: the part's buffers are free again.
   */
  async add(send: () => Promise<unknown>, done: () => void, limit: number): Promise<void> {
    try {
      while (this.#inFlight.size >= limit) await Promise.race(this.#inFlight);
      this.#throwIfFailed();
    } catch (err) {
      done();
      throw err;
    }
    const upload = send()
      .then(
        () => {},
        (error: unknown) => {
          this.#failure ??= { error };
        },
      )
      .finally(() => {
        this.#inFlight.delete(upload);
        done();
      });
    this.#inFlight.add(upload);
  }

  async finish(): Promise<void> {
    await this.settle();
    this.#throwIfFailed();
  }

  /** Waits for every upload started; never rejects. */
  async settle(): Promise<void> {
    await Promise.all(this.#inFlight);
  }

  #throwIfFailed(): void {
    if (this.#failure) throw this.#failure.error;
  }
}

/**
 * The body of one part: a buffer, or streams from a range of the file. `body()` gives a fresh
 * stream (a Readable) each time it is called, one per try of the request, and the range is then
 * sent once more, reread; a stream piped again sends again too. Azure's SDK is given `body` itself
 * and calls it per try; the S3 sink calls it for each of its own tries.
 */
export type PartBody = { buffer: Buffer } | { body: () => Readable };

/** What a store takes of one object uploaded in parts. */
export interface PartLimits {
  /** Parts one object may have (Azure: 50,000 blocks; S3: 10,000 parts). */
  maxParts: number;
  /** The largest part (Azure: 4000 MiB a block; S3: 5 GiB a part). */
  maxPartSize: number;
}

const MiB = 1024 * 1024;

/**
 * The part size for a file of `size` bytes: the sink's own, or, when the store's part count would
 * not hold the file in parts of that size, the smallest whole number of MiB that does. A part sent
 * from a file's range costs the same memory whatever its size (RangeSend). A file no parts can hold
 * is refused before anything is sent.
 */
export function partSizeFor(
  size: number,
  partSize: number,
  limits: PartLimits,
  message: (text: string) => string,
): number {
  const needed = Math.ceil(size / limits.maxParts);
  if (needed <= partSize) return partSize;
  const grown = Math.ceil(needed / MiB) * MiB;
  if (grown > limits.maxPartSize) {
    throw new FerryError(
      'store_error',
      message(
        `is ${size} bytes, more than the store takes in one object (${limits.maxParts} parts of at most ${limits.maxPartSize / MiB} MiB)`,
      ),
    );
  }
  return grown;
}

export interface DirectUpload {
  direct: DirectRead;
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

/** The error for a file that ended before or after the size it was opened with. */
async function changedError(direct: DirectRead, message: (text: string) => string): Promise<unknown> {
  try {
    await direct.unchanged();
  } catch (err) {
    return err;
  }
  return new FerryError('store_error', message('changed size while it was read'), { retryable: true });
}

/**
 * A file under WHOLE_READ_BELOW read whole into `into` (a range pair), counted (`read`) or as a
 * second look (`reread`); throws unless it is still the size it was opened with.
 */
async function readWhole(
  direct: DirectRead,
  into: Buffer,
  how: 'read' | 'reread',
  message: (text: string) => string,
): Promise<Buffer> {
  // Up to one byte more than the size, to see the file has not grown.
  let filled = 0;
  for (let n = 1; n > 0 && filled <= direct.size; filled += n)
    n = await direct[how](into, filled, direct.size + 1 - filled, filled);
  if (filled !== direct.size) throw await changedError(direct, message);
  await direct.unchanged();
  return into.subarray(0, filled);
}

/** Files kept open by HeldFiles in the whole node; past this a small file is staged at once. */
export const HELD_FILES_MAX = 1024;
let heldFiles = 0;

/**
 * A small file a sink publishes whole at commit with one request (Azure: Put Blob; S3: PutObject)
 * instead of staging it now (Put Block, then Put Block List at commit; or create, part, complete).
 * Staging only keeps the file open (DirectRead.keep): nothing is read, and nothing of it is held in
 * memory. publish() reads it then, counted, into a pooled buffer, takes its sha256 (what the staged
 * object reports once the commit is over: StagedObject.sha256) and sends those bytes, so the file is
 * read and hashed once, as a file staged at once is. What is published is the file as it is then,
 * provided it has not changed since it was opened (DirectRead.unchanged), which the read checks.
 * A second publish (the commit's put sent again) reads it once more, uncounted, and sends it only if
 * it is still the same bytes.
 */
export class HeldFile {
  readonly size: number;
  /** The sha256 of the bytes published; '' until publish() has read them. */
  sha256 = '';
  readonly #direct: DirectRead;
  readonly #message: (text: string) => string;
  #let: (() => void) | undefined;

  private constructor(direct: DirectRead, letGo: () => void, message: (text: string) => string) {
    this.size = direct.size;
    this.#direct = direct;
    this.#message = message;
    this.#let = letGo;
  }

  /**
   * Keeps `direct` open, when it is small, its source can keep it and the node holds fewer than
   * HELD_FILES_MAX; undefined otherwise (the caller stages it at once).
   */
  static hold(direct: DirectRead, message: (text: string) => string): HeldFile | undefined {
    if (direct.size >= WHOLE_READ_BELOW || !direct.keep || heldFiles >= HELD_FILES_MAX) return undefined;
    heldFiles++;
    return new HeldFile(direct, direct.keep(), message);
  }

  /**
   * Reads the file and hands its bytes to `send` (called again for another request, say after a
   * conflict, with the file read again, and only if it is still the same bytes).
   */
  async publish(signal: AbortSignal, send: (body: Buffer) => Promise<unknown>): Promise<void> {
    if (!this.#let) throw new Error('HeldFile.publish after release');
    const first = this.sha256 === '';
    const pair = await rangePool.take(signal);
    try {
      const whole = await readWhole(this.#direct, pair, first ? 'read' : 'reread', this.#message);
      const sha256 = sha256Of(whole);
      if (first) this.sha256 = sha256;
      else if (sha256 !== this.sha256) {
        throw new FerryError('store_error', this.#message('changed while it was committed'), {
          retryable: true,
        });
      }
      await send(whole);
    } finally {
      rangePool.give(pair);
    }
  }

  /** Lets the file go (closed once its source is done with it too). Idempotent. */
  release(): void {
    if (!this.#let) return;
    this.#let();
    this.#let = undefined;
    heldFiles--;
  }
}

function sha256Of(bytes: Buffer): string {
  return createHash('sha256').update(bytes).digest('hex');
}

/** Uploads a file read directly in parts (see the top of this file); returns its size. */
export async function uploadDirect(o: DirectUpload): Promise<number> {
  const { direct, signal } = o;
  const changed = (): Promise<unknown> => changedError(direct, o.message);
  if (direct.size < WHOLE_READ_BELOW) {
    const pair = await rangePool.take(signal);
    let give = (): void => rangePool.give(pair);
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
  const hashed = hashInOrder(direct, o.hash, signal);
  hashed.catch(o.stop);
  for (let index = 0, start = 0; start < direct.size; index++, start += partSize) {
    const length = Math.min(partSize, direct.size - start);
    const range = new RangeSend(direct, await rangePool.take(signal), start, length, async (err) =>
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

/** How much of an object staged from a stream is held in its own chunks before it takes a buffer. */
const HOLD_BYTES = 1024 * 1024;

export interface StreamUpload {
  stream: Readable;
  /** Where full-size parts come from: the sink's node-wide pool, buffers of `partSize`. */
  pool: BufferPool;
  partSize: number;
  /** An object past limits.maxParts parts of partSize fails (a stream's size is not known ahead). */
  limits: PartLimits;
  /** Parts of this object uploading at once. */
  limit: number;
  uploads: PartUploads;
  hash: Hash;
  signal: AbortSignal;
  /** The sink's message about the object (`azure-blob "lake": a.csv <text> (stage)`). */
  message: (text: string) => string;
  /** Uploads part `index` (0-based) of `length` bytes; the buffer is the pool's until it is done. */
  send: (index: number, body: PartBody, length: number) => Promise<unknown>;
}

/**
 * Uploads a stream (a table encoded on the way, a file a source can only stream) in parts; returns
 * its size. The first HOLD_BYTES are kept in their own chunks: a small object costs its own size and
 * takes no pooled buffer. Past that, the object is copied into pooled buffers as it comes, so what it
 * holds beyond the pool is one chunk, however many objects upload at once.
 */
export async function uploadStream(o: StreamUpload): Promise<number> {
  const { pool, partSize, uploads, signal } = o;
  let bytes = 0;
  let index = 0;
  const send = async (buffer: Buffer, length: number, done: () => void): Promise<void> => {
    const part = index++;
    if (part >= o.limits.maxParts) {
      done();
      throw new FerryError(
        'store_error',
        o.message(
          `is larger than ${o.limits.maxParts} parts of ${partSize / MiB} MiB, the most the store takes of an object sent as a stream`,
        ),
      );
    }
    await uploads.add(() => o.send(part, { buffer }, length), done, o.limit);
  };
  await pipeline(
    o.stream,
    async (source: AsyncIterable<Buffer | string>) => {
      let parts: Buffer[] = [];
      let held = 0;
      let block: Buffer | undefined;
      let filled = 0;
      try {
        for await (const chunk of source) {
          let buf = typeof chunk === 'string' ? Buffer.from(chunk) : chunk;
          o.hash.update(buf);
          bytes += buf.length;
          if (!block) {
            if (held + buf.length < HOLD_BYTES) {
              parts.push(buf);
              held += buf.length;
              continue;
            }
            block = await pool.take(signal);
            filled = 0;
            for (const part of parts) filled += part.copy(block, filled);
            parts = [];
            held = 0;
          }
          while (block && buf.length > 0) {
            const n = buf.copy(block, filled);
            filled += n;
            buf = buf.subarray(n);
            if (filled < partSize) continue;
            const full: Buffer = block;
            block = undefined;
            await send(full, full.length, () => pool.give(full));
            if (buf.length > 0) {
              block = await pool.take(signal);
              filled = 0;
            }
          }
        }
        if (block) {
          const last: Buffer = block;
          block = undefined;
          await send(last.subarray(0, filled), filled, () => pool.give(last));
        } else if (held > 0) {
          await send(joined(parts, held), held, () => {});
        }
      } finally {
        if (block) pool.give(block);
      }
    },
    { signal },
  );
  await uploads.finish();
  return bytes;
}

/** The parts as one buffer; a single part is used as it is, not copied. */
function joined(parts: Buffer[], length: number): Buffer {
  return parts.length === 1 && parts[0]?.length === length ? parts[0] : Buffer.concat(parts, length);
}

/** The object read once more from the start, in order, into `hash`, through one pooled buffer. */
async function hashInOrder(direct: DirectRead, hash: Hash, signal: AbortSignal): Promise<void> {
  const buffer = await rangePool.take(signal);
  try {
    for (let at = 0, n = 1; n > 0 && at < direct.size; at += n) {
      signal.throwIfAborted();
      n = await direct.reread(buffer, 0, Math.min(buffer.length, direct.size - at), at);
      hash.update(buffer.subarray(0, n));
    }
  } finally {
    rangePool.give(buffer);
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
    pair: Buffer,
    start: number,
    length: number,
    fail: (error: unknown) => void,
  ) {
    this.#direct = direct;
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
    void this.#last.then(() => rangePool.give(this.#pair));
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

/**
 * The Azure Blob sink: one AzureBlobWriter per task attempt, publishing with block blobs.
 *
 * Attempt states: open -> committed | aborted (both final; abort after commit is a no-op, commit
 * after abort is refused). While open, stage() uploads an object's bytes as uncommitted blocks of its
 * final blob `<prefix>/<name>` (16 MiB blocks: up to 3 in flight from a stream, 16 sent straight
 * from ranges of a file read directly); uncommitted blocks are invisible, so nothing shows in the
 * container. commit() puts each blob's block list: only then does the blob appear, whole, and a list
 * replaces whatever the blob held before, so a second attempt of a task replaces the first attempt's
 * blobs instead of adding to them. abort() needs no request: the service discards uncommitted blocks
 * when another list is committed or after a week.
 *
 * Block ids are unique per attempt (`<attempt>-<seq>`), so two attempts of a task staging the same
 * blob at once never mix blocks. Every id has the same length whatever the attempt, as the service
 * requires of all blocks of one blob. Committing a list discards the blob's other uncommitted blocks,
 * so of two attempts staging at once the first to commit wins and the other's commit fails with a
 * conflict, as with the filesystem sink; an attempt that stages after a commit replaces it.
 */
import { createHash, type Hash } from 'node:crypto';
import { Readable, type Writable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import type { BlockBlobClient } from '@azure/storage-blob';
import { FerryError } from '../../common/errors.ts';
import type { ResolvedEndpointT } from '../../protocol/task.ts';
import type { AttemptContext, DirectRead, SinkWriter, StageInput, StagedObject } from '../connector.ts';
import {
  blobName,
  checkObjectName,
  compileAzureBlobSink,
  openContainer,
  type AzureBlobContainer,
} from './azure-blob-config.ts';
import { azureBlobError, azureBlobMessage, cancelledError } from './azure-blob-errors.ts';

export const BLOCK_SIZE = 16 * 1024 * 1024;
/** Blocks of one object staged from a stream uploading at once (each holds a block buffer). */
const BLOCKS_IN_FLIGHT = 3;
/** Full-size block buffers in the whole node (64 MiB, one slab): shared by every upload running. */
const NODE_BLOCKS = 4;
/** How much of an object staged from a stream is held in its own chunks before it takes a block. */
const HOLD_BYTES = 1024 * 1024;
/**
 * Blocks of one file read directly that are sent at once, each straight from its range of the file
 * (Azurite, and the service, take many requests in flight more cheaply than a few).
 */
const RANGES_IN_FLIGHT = 16;
/** A range goes out in pieces of this size, through two buffers: one read into, one being sent. */
const RANGE_CHUNK = 256 * 1024;
/**
 * Range buffer pairs in the whole node (16 MiB, one slab): one per range being sent, per hash pass,
 * and per small file read whole.
 */
const NODE_RANGES = 32;
/** A file read directly and smaller than this is read whole into one pair and sent as one block. */
export const WHOLE_READ_BELOW = 2 * RANGE_CHUNK;
/** Block lists committed at once. */
const COMMITS_IN_FLIGHT = 8;
/** Raw block id length before base64; the service allows up to 64 bytes. */
const BLOCK_ID_LENGTH = 64;
const SAFE_ATTEMPT_ID = /^[A-Za-z0-9_-]{1,48}$/;

type WriterState = 'open' | 'committed' | 'aborted';

interface StagedBlob {
  object: StagedObject;
  blob: string;
  blockIds: string[];
}

export async function openAzureBlobWriter(
  sink: ResolvedEndpointT,
  ctx: AttemptContext,
): Promise<AzureBlobWriter> {
  const options = compileAzureBlobSink(sink);
  const store = openContainer(sink);
  if (ctx.signal.aborted) throw cancelledError(store.linkedService, 'open');
  // One request up front, so wrong credentials or a missing container fail the attempt before any
  // data is read from the source.
  try {
    await store.client.getProperties({ abortSignal: ctx.signal });
  } catch (err) {
    if (ctx.signal.aborted) throw cancelledError(store.linkedService, 'open');
    throw azureBlobError(err, store, 'open');
  }
  return new AzureBlobWriter(store, options.prefix, ctx);
}

export class AzureBlobWriter implements SinkWriter {
  readonly #store: AzureBlobContainer;
  readonly #prefix: string;
  readonly #ctx: AttemptContext;
  readonly #attemptKey: string;
  readonly #staged = new Map<string, StagedBlob>();
  #seq = 0;
  #state: WriterState = 'open';

  constructor(store: AzureBlobContainer, prefix: string, ctx: AttemptContext) {
    this.#store = store;
    this.#prefix = prefix;
    this.#ctx = ctx;
    this.#attemptKey = SAFE_ATTEMPT_ID.test(ctx.attemptId)
      ? ctx.attemptId
      : createHash('sha256').update(ctx.attemptId).digest('hex').slice(0, 48);
  }

  async stage({ name, stream }: StageInput): Promise<StagedObject> {
    // The source may fail before pipeline() listens; kept by the stream, that failure then rejects
    // pipeline() instead of crashing the process.
    stream.on('error', () => {});
    return this.#stageBlocks(
      name,
      async (uploads, hash, signal) => {
        let bytes = 0;
        await pipeline(
          stream,
          async (source: AsyncIterable<Buffer | string>) => {
            // The first HOLD_BYTES are kept in their own chunks: a small object costs its own size
            // and takes no block. Past that, the object is copied into pooled blocks as it comes,
            // so what it holds beyond the pool is one chunk, however many objects upload at once.
            let parts: Buffer[] = [];
            let held = 0;
            let block: Buffer | undefined;
            let filled = 0;
            try {
              for await (const chunk of source) {
                let buf = typeof chunk === 'string' ? Buffer.from(chunk) : chunk;
                hash.update(buf);
                bytes += buf.length;
                if (!block) {
                  if (held + buf.length < HOLD_BYTES) {
                    parts.push(buf);
                    held += buf.length;
                    continue;
                  }
                  block = await blockPool.take(signal);
                  filled = 0;
                  for (const part of parts) filled += part.copy(block, filled);
                  parts = [];
                  held = 0;
                }
                while (block && buf.length > 0) {
                  const n = buf.copy(block, filled);
                  filled += n;
                  buf = buf.subarray(n);
                  if (filled < BLOCK_SIZE) continue;
                  const full: Buffer = block;
                  block = undefined;
                  await uploads.add(this.#nextBlockId(), full, full.length, () => blockPool.give(full));
                  if (buf.length > 0) {
                    block = await blockPool.take(signal);
                    filled = 0;
                  }
                }
              }
              if (block) {
                const last: Buffer = block;
                block = undefined;
                await uploads.add(this.#nextBlockId(), last.subarray(0, filled), filled, () =>
                  blockPool.give(last),
                );
              } else if (held > 0) {
                await uploads.add(this.#nextBlockId(), joined(parts, held), held, () => {});
              }
            } finally {
              if (block) blockPool.give(block);
            }
          },
          { signal: this.#ctx.signal },
        );
        return bytes;
      },
      // The stream is ours once handed over: refusing it must not leave its source open, and
      // pipeline() destroys it when it fails, so a failure before it started must do the same.
      () => stream.destroy(),
    );
  }

  /**
   * A file read directly. One smaller than WHOLE_READ_BELOW (512 KiB) is read whole into a pooled
   * range buffer pair and sent as one block. A larger one is sent as blocks straight from ranges of
   * the file, RANGES_IN_FLIGHT at once, each through a pooled pair; its sha256 comes from reading it
   * once more in order meanwhile. Either way it must not have changed by the end (DirectRead.unchanged), so
   * what is published is one version of the file.
   */
  async stageDirect(name: string, direct: DirectRead): Promise<StagedObject> {
    if (direct.size < WHOLE_READ_BELOW) {
      return this.#stageBlocks(name, async (uploads, hash, signal) => {
        const pair = await rangePool.take(signal);
        let give = (): void => rangePool.give(pair);
        try {
          // Up to one byte more than the size, to see the file has not grown.
          let filled = 0;
          for (let n = 1; n > 0 && filled <= direct.size; filled += n)
            n = await direct.read(pair, filled, direct.size + 1 - filled, filled);
          if (filled !== direct.size) throw await this.#changed(name, direct);
          await direct.unchanged();
          const whole = pair.subarray(0, filled);
          hash.update(whole);
          if (filled > 0) {
            const done = give;
            give = () => {}; // the upload gives it back
            await uploads.add(this.#nextBlockId(), whole, filled, done);
          }
          return filled;
        } finally {
          give();
        }
      });
    }
    return this.#stageBlocks(name, async (uploads, hash, signal, stop) => {
      const hashed = hashInOrder(direct, hash, signal);
      hashed.catch(stop);
      for (let start = 0; start < direct.size; start += BLOCK_SIZE) {
        const length = Math.min(BLOCK_SIZE, direct.size - start);
        const range = new RangeSend(direct, await rangePool.take(signal), start, length, async (err) =>
          stop(err ?? (await this.#changed(name, direct))),
        );
        await uploads.add(
          this.#nextBlockId(),
          () => range.body(),
          length,
          () => range.release(),
          RANGES_IN_FLIGHT,
        );
      }
      await uploads.finish();
      await hashed;
      await direct.unchanged();
      return direct.size;
    });
  }

  /** The error for a direct read that ended before or after the size it was opened with. */
  async #changed(name: string, direct: DirectRead): Promise<unknown> {
    try {
      await direct.unchanged();
    } catch (err) {
      return err;
    }
    return new FerryError(
      'store_error',
      azureBlobMessage(this.#store.linkedService, `${name} changed size while it was read (stage)`),
      { retryable: true },
    );
  }

  /**
   * One object as uncommitted blocks of its blob: `write` reads it, hashing every byte and handing
   * full blocks to `uploads`, and returns its size; what is still uploading is then awaited.
   */
  async #stageBlocks(
    name: string,
    write: (
      uploads: BlockUploads,
      hash: Hash,
      signal: AbortSignal,
      stop: (error: unknown) => void,
    ) => Promise<number>,
    release: () => void = () => {},
  ): Promise<StagedObject> {
    const ls = this.#store.linkedService;
    let normal: string;
    try {
      this.#assertOpen('stage');
      if (this.#ctx.signal.aborted) throw cancelledError(ls, 'stage');
      normal = checkObjectName(ls, name);
    } catch (err) {
      release();
      throw err;
    }
    const blob = blobName(this.#prefix, normal);
    const client = this.#store.client.getBlockBlobClient(blob);
    // Stops the blocks still uploading when the stage fails for any reason, not only on cancel.
    const local = new AbortController();
    const signal = AbortSignal.any([this.#ctx.signal, local.signal]);
    // Work outside a request that must end the stage (a file read failing under a block being
    // sent): what it stopped for is the stage's error, not the aborted requests'.
    let stopped: { error: unknown } | undefined;
    const stop = (error: unknown): void => {
      stopped ??= { error };
      local.abort();
    };
    const uploads = new BlockUploads(client, signal);
    const hash = createHash('sha256');
    let bytes: number;
    try {
      bytes = await write(uploads, hash, signal, stop);
      await uploads.finish();
    } catch (err) {
      release();
      local.abort();
      await uploads.settle();
      if (this.#ctx.signal.aborted) throw cancelledError(ls, 'stage');
      throw azureBlobError(stopped ? stopped.error : err, { ...this.#store, blob }, 'stage');
    }
    const object: StagedObject = { name: normal, bytes, sha256: hash.digest('hex') };
    this.#staged.set(normal, { object, blob, blockIds: uploads.ids });
    return object;
  }

  async commit(): Promise<void> {
    if (this.#state === 'committed') return;
    this.#assertOpen('commit');
    const ls = this.#store.linkedService;
    if (this.#ctx.signal.aborted) throw cancelledError(ls, 'commit');
    const pending = [...this.#staged.values()].sort((a, b) =>
      a.blob < b.blob ? -1 : a.blob > b.blob ? 1 : 0,
    );
    const commitOne = async (staged: StagedBlob): Promise<void> => {
      try {
        // An empty list still creates the blob: a 0-byte object is published as an empty blob.
        await this.#store.client
          .getBlockBlobClient(staged.blob)
          .commitBlockList(staged.blockIds, { abortSignal: this.#ctx.signal });
      } catch (err) {
        if (this.#ctx.signal.aborted) throw cancelledError(ls, 'commit');
        throw azureBlobError(err, { ...this.#store, blob: staged.blob }, 'commit');
      }
    };
    const workers = Array.from({ length: Math.min(COMMITS_IN_FLIGHT, pending.length) }, async () => {
      for (let next = pending.shift(); next !== undefined; next = pending.shift()) await commitOne(next);
    });
    // allSettled first, so no commit is still running when the failure is reported.
    const results = await Promise.allSettled(workers);
    const failed = results.find((r): r is PromiseRejectedResult => r.status === 'rejected');
    if (failed) throw failed.reason;
    this.#state = 'committed';
  }

  async abort(): Promise<void> {
    if (this.#state === 'committed') return;
    this.#state = 'aborted';
    this.#staged.clear();
  }

  #nextBlockId(): string {
    const raw = `${this.#attemptKey}-${String(this.#seq++).padStart(8, '0')}`.padEnd(BLOCK_ID_LENGTH, '.');
    return Buffer.from(raw).toString('base64');
  }

  #assertOpen(operation: string): void {
    if (this.#state !== 'open') {
      throw new FerryError(
        'conflict',
        azureBlobMessage(
          this.#store.linkedService,
          `attempt ${this.#ctx.attemptId} is ${this.#state} (${operation})`,
        ),
      );
    }
  }
}

/**
 * Buffers shared by every upload in the node: `count` of `size` bytes cut from one slab, reused once
 * their upload is over, and dropped when no upload holds any. This bounds what uploads hold whatever
 * the number of tasks running at once (an upload waits for a free buffer), and fresh buffers would be
 * garbage the moment they are sent, piling up outside V8's heap until a full collection. The block
 * slab (64 MiB) is above glibc's largest mmap threshold, so it is its own mapping, returned to the
 * system whole when dropped; separate 16 MiB buffers would come from the heap once the threshold had
 * adapted, and the process would keep that memory. A slab is made only when an upload needs it: a
 * small file costs its own size.
 */
class BufferPool {
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
    // Every block is back: no upload is running, and an idle node keeps none.
    if (this.#free.length === this.#count) {
      this.#free.length = 0;
      this.#slab = undefined;
    }
  }
}

const blockPool = new BufferPool(NODE_BLOCKS, BLOCK_SIZE);
/** The same for direct reads: pairs of range chunks (see RangeSend), and the hash pass's buffer. */
const rangePool = new BufferPool(NODE_RANGES, 2 * RANGE_CHUNK);

/** The parts as one buffer; a single part is used as it is, not copied. */
function joined(parts: Buffer[], length: number): Buffer {
  return parts.length === 1 && parts[0]?.length === length ? parts[0] : Buffer.concat(parts, length);
}

/** The blocks of one object: a limited number uploading at once, the first failure kept. */
class BlockUploads {
  readonly ids: string[] = [];
  readonly #client: BlockBlobClient;
  readonly #signal: AbortSignal;
  readonly #inFlight = new Set<Promise<void>>();
  #failure: { error: unknown } | undefined;

  constructor(client: BlockBlobClient, signal: AbortSignal) {
    this.#client = client;
    this.#signal = signal;
  }

  /**
   * Starts uploading a block, from a buffer or from a body made for each try of the request; waits
   * first while `limit` blocks are uploading, so the reader is held back. `done` is called once the
   * request is over, whatever its outcome: the block's buffers are free again.
   */
  async add(
    id: string,
    body: Buffer | (() => Readable),
    length: number,
    done: () => void,
    limit = BLOCKS_IN_FLIGHT,
  ): Promise<void> {
    try {
      while (this.#inFlight.size >= limit) await Promise.race(this.#inFlight);
      this.#throwIfFailed();
    } catch (err) {
      done();
      throw err;
    }
    this.ids.push(id);
    // No onProgress: it would put a stream between a RangeBody and the request, which would then
    // take its chunks before they were sent.
    const upload = this.#client
      .stageBlock(id, body, length, { abortSignal: this.#signal })
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
 * One block sent straight from a range of a file read directly. The range goes out in RANGE_CHUNK
 * pieces through the two halves of a pooled pair: one half is read into while the other is being
 * sent, and a half is read into again only once the request has taken it (its write callback), so
 * a block in flight holds 512 KiB, not 16 MiB. The SDK asks for a body for every try of the
 * request and pipes it into the request at once; a body's sending starts once the one before it
 * is over, so no two share the buffers, and it rereads what an earlier try had read (those bytes
 * were counted already). A read that fails or ends early is reported to `fail` (with undefined for
 * ending early), which stops the whole stage.
 */
class RangeSend {
  readonly #direct: DirectRead;
  readonly #pair: Buffer;
  readonly #start: number;
  readonly #length: number;
  readonly #fail: (error: unknown) => void;
  /** The latest body's sending, over when it no longer touches the pair. */
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

  /** Gives the pair back once the last body piped is done with it (one never piped never used it). */
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
 * A request body the SDK pipes into its request: `pipe()` hands the request to `send`, which writes
 * to it directly, so the body knows when each chunk has been taken. The body is destroyed (and
 * closes, which the SDK waits for) once `send` is over.
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

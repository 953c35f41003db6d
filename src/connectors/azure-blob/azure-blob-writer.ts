/**
 * The Azure Blob sink: one AzureBlobWriter per task attempt, publishing with block blobs.
 *
 * Attempt states: open -> committed | aborted (both final; abort after commit is a no-op, commit
 * after abort is refused). While open, stage() uploads an object's bytes as uncommitted blocks of its
 * final blob `<prefix>/<name>` (16 MiB blocks, up to 3 in flight); uncommitted blocks are invisible,
 * so nothing shows in the container. commit() puts each blob's block list: only then does the blob
 * appear, whole, and a list replaces whatever the blob held before, so a second attempt of a task
 * replaces the first attempt's blobs instead of adding to them. abort() needs no request: the service
 * discards uncommitted blocks when another list is committed or after a week.
 *
 * Block ids are unique per attempt (`<attempt>-<seq>`), so two attempts of a task staging the same
 * blob at once never mix blocks. Every id has the same length whatever the attempt, as the service
 * requires of all blocks of one blob. Committing a list discards the blob's other uncommitted blocks,
 * so of two attempts staging at once the first to commit wins and the other's commit fails with a
 * conflict, as with the filesystem sink; an attempt that stages after a commit replaces it.
 */
import { createHash, type Hash } from 'node:crypto';
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
/** Blocks of one object uploading at once. */
const BLOCKS_IN_FLIGHT = 3;
/** Full-size block buffers in the whole node (64 MiB, one slab): shared by every upload running. */
const NODE_BLOCKS = 4;
/** How much of an object staged from a stream is held in its own chunks before it takes a block. */
const HOLD_BYTES = 1024 * 1024;
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
                  await uploads.add(this.#nextBlockId(), full, () => blockPool.give(full));
                  if (buf.length > 0) {
                    block = await blockPool.take(signal);
                    filled = 0;
                  }
                }
              }
              if (block) {
                const last: Buffer = block;
                block = undefined;
                await uploads.add(this.#nextBlockId(), last.subarray(0, filled), () => blockPool.give(last));
              } else if (held > 0) {
                await uploads.add(this.#nextBlockId(), joined(parts, held), () => {});
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
   * The file is read straight into the node's block buffers: no buffer per read, no copy. An object
   * smaller than a block is read into a buffer of its own size (and one byte more, to see the end).
   */
  async stageDirect(name: string, direct: DirectRead): Promise<StagedObject> {
    return this.#stageBlocks(name, async (uploads, hash, signal) => {
      let bytes = 0;
      const small = direct.size < BLOCK_SIZE;
      let own: Buffer | undefined = small ? Buffer.allocUnsafeSlow(direct.size + 1) : undefined;
      const next = async (): Promise<{ block: Buffer; done: () => void }> => {
        if (own) {
          const block = own;
          own = undefined;
          return { block, done: () => {} };
        }
        const block = await blockPool.take(signal);
        return { block, done: () => blockPool.give(block) };
      };
      let { block, done } = await next();
      let filled = 0;
      try {
        for (;;) {
          if (signal.aborted) throw cancelledError(this.#store.linkedService, 'stage');
          const n = await direct.read(block, filled, block.length - filled);
          if (n === 0) break;
          hash.update(block.subarray(filled, filled + n));
          bytes += n;
          filled += n;
          if (filled < block.length) continue;
          const full = done;
          done = () => {}; // handed to the upload, which gives it back
          await uploads.add(this.#nextBlockId(), block, full);
          ({ block, done } = await next());
          filled = 0;
        }
        if (filled > 0) {
          const last = done;
          done = () => {};
          await uploads.add(this.#nextBlockId(), block.subarray(0, filled), last);
        }
      } finally {
        done();
      }
      return bytes;
    });
  }

  /**
   * One object as uncommitted blocks of its blob: `write` reads it, hashing every byte and handing
   * full blocks to `uploads`, and returns its size; what is still uploading is then awaited.
   */
  async #stageBlocks(
    name: string,
    write: (uploads: BlockUploads, hash: Hash, signal: AbortSignal) => Promise<number>,
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
    const uploads = new BlockUploads(client, signal);
    const hash = createHash('sha256');
    let bytes: number;
    try {
      bytes = await write(uploads, hash, signal);
      await uploads.finish();
    } catch (err) {
      release();
      local.abort();
      await uploads.settle();
      if (this.#ctx.signal.aborted) throw cancelledError(ls, 'stage');
      throw azureBlobError(err, { ...this.#store, blob }, 'stage');
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
 * The node's full-size block buffers, shared by every upload: NODE_BLOCKS blocks cut from one slab,
 * reused once their upload is over, and dropped when no upload holds any. This bounds what block
 * uploads hold whatever the number of tasks running at once (an upload waits for a free block), and
 * fresh buffers would be garbage the moment they are sent, piling up outside V8's heap until a full
 * collection. One slab of 64 MiB is above glibc's largest mmap threshold, so it is its own mapping,
 * returned to the system whole when dropped; separate 16 MiB buffers would come from the heap once
 * the threshold had adapted, and the process would keep that memory. The slab is made only when an
 * object fills a block: a small file costs its own size.
 */
class BlockPool {
  readonly #free: Buffer[] = [];
  readonly #waiting: ((block: Buffer) => void)[] = [];
  readonly #count: number;
  #slab: Buffer | undefined;

  constructor(count: number) {
    this.#count = count;
  }

  async take(signal: AbortSignal): Promise<Buffer> {
    if (!this.#slab) {
      this.#slab = Buffer.allocUnsafeSlow(this.#count * BLOCK_SIZE);
      for (let i = this.#count - 1; i >= 0; i--)
        this.#free.push(this.#slab.subarray(i * BLOCK_SIZE, (i + 1) * BLOCK_SIZE));
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

const blockPool = new BlockPool(NODE_BLOCKS);

/** The parts as one buffer; a single part is used as it is, not copied. */
function joined(parts: Buffer[], length: number): Buffer {
  return parts.length === 1 && parts[0]?.length === length ? parts[0] : Buffer.concat(parts, length);
}

/** The blocks of one object: at most BLOCKS_IN_FLIGHT uploading, the first failure kept. */
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
   * Starts uploading a block; waits first while the limit is reached, so the reader is held back.
   * `done` is called once the request is over, whatever its outcome: the block is free again.
   */
  async add(id: string, block: Buffer, done: () => void): Promise<void> {
    try {
      while (this.#inFlight.size >= BLOCKS_IN_FLIGHT) await Promise.race(this.#inFlight);
      this.#throwIfFailed();
    } catch (err) {
      done();
      throw err;
    }
    this.ids.push(id);
    const upload = this.#client
      .stageBlock(id, block, block.length, { abortSignal: this.#signal })
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

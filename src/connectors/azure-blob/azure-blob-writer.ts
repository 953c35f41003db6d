/**
 * The Azure Blob sink: one AzureBlobWriter per task attempt, publishing with block blobs.
 *
 * Attempt states: open -> committed | aborted (both final; abort after commit is a no-op, commit
 * after abort is refused). While open, stage() uploads an object's bytes as uncommitted blocks of its
 * final blob `<prefix>/<name>` (8 MiB blocks from a stream, up to 3 in flight; 16 MiB blocks of a
 * file read directly, 16 sent at once straight from its ranges); uncommitted blocks are invisible,
 * so nothing shows in the container. A small file read directly whose source can keep it open is
 * not read nor sent yet: it is held open (HeldFile, src/connectors/object-store/), then read and
 * put whole at commit, one request instead of two.
 * commit() puts each blob's block list, or its held file: only then does the blob appear, whole, and
 * it replaces whatever the blob held before, so a second attempt of a task replaces the first
 * attempt's blobs instead of adding to them. abort() needs no request: the service discards
 * uncommitted blocks when another list is committed or after a week.
 *
 * Of two attempts of a task at once (a stale one the service has given up on, and its retry), the
 * first to commit wins and the other's commit fails with a conflict, as with the filesystem sink.
 * Every commit request is conditional on the blob being unchanged since the attempt began, by the
 * service's clock (the Date of the attempt's first request, plus a second for the header's
 * precision), and a blob names the attempt that wrote it in its metadata (`ferryattempt`), so a
 * request of this attempt's own that landed and was tried again is told apart. Block ids are unique
 * per attempt (`<attempt>-<seq>`), so two attempts staging the same blob never mix blocks; every id
 * has the same length whatever the attempt, as the service requires of all blocks of one blob; and
 * committing a list discards the blob's other uncommitted blocks, so a list staged before another
 * attempt's commit fails too.
 */
import { createHash, type Hash } from 'node:crypto';
import type { BlockBlobClient } from '@azure/storage-blob';
import { FerryError } from '../../common/errors.ts';
import type { ResolvedEndpointT } from '../../protocol/task.ts';
import type { AttemptContext, SinkWriter, StageInput, StagedObject } from '../connector.ts';
import type { DirectRead } from '../../tables/object-reads.ts';
import type { PoolSize } from '../../common/buffer-pool.ts';
import { HeldFile } from '../object-store/held-file.ts';
import { PartUploads, type PartBody, type PartLimits } from '../object-store/part-uploads.ts';
import { uploadDirect } from '../object-store/range-upload.ts';
import { StageSignal } from '../object-store/stage-signal.ts';
import { uploadStream } from '../object-store/stream-upload.ts';
import {
  blobName,
  checkObjectName,
  compileAzureBlobSink,
  openContainer,
  type AzureBlobContainer,
} from './azure-blob-config.ts';
import {
  azureBlobError,
  azureBlobMessage,
  cancelledError,
  isConditionNotMet,
  isNotFound,
  overtakenError,
} from './azure-blob-errors.ts';

/** Blocks of a file read directly (sent from its ranges: their size costs no memory). */
export const BLOCK_SIZE = 16 * 1024 * 1024;
/**
 * Blocks of an object staged from a stream, each held in memory while it fills and uploads: 8 MiB
 * rather than 16 keeps a node copying four gzip-encoded tables 30 MiB lower at its peak (pg-to-blob:
 * 198-209 MiB against 227-237), at the same speed.
 */
export const STREAM_BLOCK_SIZE = 8 * 1024 * 1024;
/**
 * The service's limits on one block blob: 50,000 committed blocks of at most 4000 MiB. A file read
 * directly that 50,000 blocks of BLOCK_SIZE would not hold (over 781 GiB) goes in larger blocks; a
 * stream past 50,000 blocks of STREAM_BLOCK_SIZE (390 GiB) fails.
 */
const BLOB_BLOCKS: PartLimits = { maxParts: 50_000, maxPartSize: 4000 * 1024 * 1024 };
/** Blocks of one object staged from a stream uploading at once (each holds a block buffer). */
const BLOCKS_IN_FLIGHT = 3;
/**
 * The node's full-size block buffers for objects staged from streams (32 MiB, one slab), a pool of
 * its UploadBudget shared by every upload running: an upload waits for a free block whatever the
 * number of tasks running at once.
 */
const STREAM_BLOCKS: PoolSize = { count: 4, size: STREAM_BLOCK_SIZE };
/** Block lists committed at once. */
const COMMITS_IN_FLIGHT = 8;
/** Raw block id length before base64; the service allows up to 64 bytes. */
const BLOCK_ID_LENGTH = 64;
const SAFE_ATTEMPT_ID = /^[A-Za-z0-9_-]{1,48}$/;
/** Metadata every published blob carries: the attempt that wrote it. */
export const ATTEMPT_METADATA = 'ferryattempt';

type WriterState = 'open' | 'committed' | 'aborted';

interface StagedBlob {
  object: StagedObject;
  blob: string;
  blockIds: string[];
  /** A small file published whole at commit instead (no blocks). */
  held?: HeldFile;
}

export async function openAzureBlobWriter(
  sink: ResolvedEndpointT,
  ctx: AttemptContext,
): Promise<AzureBlobWriter> {
  const options = compileAzureBlobSink(sink);
  const store = openContainer(sink);
  if (ctx.signal.aborted) throw cancelledError(store.linkedService, 'open');
  // One request up front, so wrong credentials or a missing container fail the attempt before any
  // data is read from the source. Its answer also dates the attempt's start by the service's clock.
  let date: Date | undefined;
  try {
    ({ date } = await store.client.getProperties({ abortSignal: ctx.signal }));
  } catch (err) {
    if (ctx.signal.aborted) throw cancelledError(store.linkedService, 'open');
    throw azureBlobError(err, store, 'open');
  }
  // The Date header has whole seconds: a second more is no earlier than the service's time of open.
  const began = date === undefined ? undefined : new Date(date.getTime() + 1000);
  return new AzureBlobWriter(store, options.prefix, ctx, began);
}

export class AzureBlobWriter implements SinkWriter {
  readonly #store: AzureBlobContainer;
  readonly #prefix: string;
  readonly #ctx: AttemptContext;
  readonly #attemptKey: string;
  readonly #staged = new Map<string, StagedBlob>();
  /** When the attempt began by the service's clock; unknown: every file is staged as blocks. */
  readonly #began: Date | undefined;
  #seq = 0;
  #state: WriterState = 'open';

  constructor(store: AzureBlobContainer, prefix: string, ctx: AttemptContext, began?: Date) {
    this.#store = store;
    this.#prefix = prefix;
    this.#ctx = ctx;
    this.#began = began;
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
      (uploads, hash, signal) =>
        uploadStream({
          stream,
          pool: this.#ctx.uploadBudget.pool(STREAM_BLOCKS),
          partSize: STREAM_BLOCK_SIZE,
          limits: BLOB_BLOCKS,
          limit: BLOCKS_IN_FLIGHT,
          uploads: uploads.parts,
          hash,
          signal,
          message: (text) => azureBlobMessage(this.#store.linkedService, `${name} ${text} (stage)`),
          send: (_index, part, length) => uploads.stage(partBody(part), length),
        }),
      // The stream is ours once handed over: refusing it must not leave its source open, and
      // pipeline() destroys it when it fails, so a failure before it started must do the same.
      () => stream.destroy(),
    );
  }

  /**
   * A file read directly. A small one whose source can keep it open is held (HeldFile,
   * src/connectors/object-store/held-file.ts) and put whole at commit, one request instead of two. Otherwise
   * it is uploaded by uploadDirect: whole when small, else 16 blocks at once, each sent straight from
   * its range of the file.
   */
  async stageDirect(name: string, direct: DirectRead): Promise<StagedObject> {
    if (this.#began !== undefined && direct.keep) {
      const normal = this.#begin(name);
      // Nothing awaited since #begin checked the attempt is open: an abort cannot have come between.
      const held = HeldFile.hold(direct, this.#ctx.uploadBudget, (text) =>
        azureBlobMessage(this.#store.linkedService, `${name} ${text} (commit)`),
      );
      if (held) {
        // Its sha256 is known once the commit has read it (commit()).
        const object: StagedObject = { name: normal, bytes: held.size, sha256: '' };
        this.#record({ object, blob: blobName(this.#prefix, normal), blockIds: [], held });
        return object;
      }
    }
    return this.#stageBlocks(name, (uploads, hash, signal, stop) =>
      uploadDirect({
        direct,
        budget: this.#ctx.uploadBudget,
        partSize: BLOCK_SIZE,
        limits: BLOB_BLOCKS,
        uploads: uploads.parts,
        hash,
        signal,
        stop,
        message: (text) => azureBlobMessage(this.#store.linkedService, `${name} ${text} (stage)`),
        // The SDK makes a body for every try of a request: it is given the factory.
        send: (_index, part, length) => uploads.stage(partBody(part), length),
      }),
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
      normal = this.#begin(name);
    } catch (err) {
      release();
      throw err;
    }
    const blob = blobName(this.#prefix, normal);
    const client = this.#store.client.getBlockBlobClient(blob);
    const stage = new StageSignal(this.#ctx.signal);
    const { signal, stop } = stage;
    const uploads = new BlockUploads(client, signal, () => this.#nextBlockId());
    const hash = createHash('sha256');
    let bytes: number;
    try {
      bytes = await write(uploads, hash, signal, stop);
      await uploads.parts.finish();
    } catch (err) {
      release();
      const failure = stage.fail(err);
      await uploads.parts.settle();
      if (this.#ctx.signal.aborted) throw cancelledError(ls, 'stage');
      throw azureBlobError(failure, { ...this.#store, blob }, 'stage');
    }
    const object: StagedObject = { name: normal, bytes, sha256: hash.digest('hex') };
    this.#record({ object, blob, blockIds: uploads.ids });
    return object;
  }

  /** What every stage checks first; the object's normalised name. */
  #begin(name: string): string {
    this.#assertOpen('stage');
    if (this.#ctx.signal.aborted) throw cancelledError(this.#store.linkedService, 'stage');
    return checkObjectName(this.#store.linkedService, name);
  }

  /** Records a staged object; one staged again under its name replaces it. */
  #record(staged: StagedBlob): void {
    this.#staged.get(staged.object.name)?.held?.release();
    this.#staged.set(staged.object.name, staged);
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
        await this.#publish(staged);
        // A held file's sha256 is that of the bytes its publish read.
        if (staged.held) staged.object.sha256 = staged.held.sha256;
      } catch (err) {
        if (this.#ctx.signal.aborted) throw cancelledError(ls, 'commit');
        throw azureBlobError(err, { ...this.#store, blob: staged.blob }, 'commit');
      } finally {
        staged.held?.release();
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
    for (const staged of this.#staged.values()) staged.held?.release();
    this.#staged.clear();
  }

  /**
   * Publishes one blob: its block list committed, or a held file put whole (Put Blob). Either is
   * conditional on the blob being unchanged since this attempt began (by the service's clock), so of
   * two attempts of a task the first to commit wins, whichever way each sends its files. When it has
   * changed since, either this attempt's own request landed already and was tried again (the blob
   * carries this attempt's id), or another attempt committed first: a conflict. A blob gone again
   * by then is published once more, on the same condition.
   */
  async #publish({ blob, blockIds, held }: StagedBlob): Promise<void> {
    const client = this.#store.client.getBlockBlobClient(blob);
    const abortSignal = this.#ctx.signal;
    const options = {
      abortSignal,
      metadata: { [ATTEMPT_METADATA]: this.#attemptKey },
      ...(this.#began ? { conditions: { ifUnmodifiedSince: this.#began } } : {}),
    };
    for (let tries = 1; ; tries++) {
      try {
        if (held) await held.publish(abortSignal, (body) => client.upload(body, body.length, options));
        // An empty list still creates the blob: a 0-byte object is published as an empty blob.
        else await client.commitBlockList(blockIds, options);
        return;
      } catch (err) {
        if (!isConditionNotMet(err)) throw err;
      }
      let writtenBy: string | undefined;
      try {
        writtenBy = (await client.getProperties({ abortSignal })).metadata?.[ATTEMPT_METADATA] ?? '';
      } catch (err) {
        if (!isNotFound(err) || tries >= 2) throw err;
      }
      if (writtenBy === this.#attemptKey) return;
      if (writtenBy !== undefined) throw overtakenError({ ...this.#store, blob }, 'commit');
    }
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

/** What stageBlock takes: a buffer, or a factory of bodies (one per try of the request). */
function partBody(part: PartBody): Buffer | (() => NodeJS.ReadableStream) {
  return 'buffer' in part ? part.buffer : part.body;
}

/** The blocks of one object: their ids in order, and their uploads. */
class BlockUploads {
  readonly ids: string[] = [];
  readonly parts = new PartUploads();
  readonly #client: BlockBlobClient;
  readonly #signal: AbortSignal;
  readonly #nextId: () => string;

  constructor(client: BlockBlobClient, signal: AbortSignal, nextId: () => string) {
    this.#client = client;
    this.#signal = signal;
    this.#nextId = nextId;
  }

  /**
   * Stages the next block (its id taken now, so the list keeps the order of the calls). No
   * onProgress: it would put a stream between a range body and the request (range-upload.ts).
   */
  stage(body: Buffer | (() => NodeJS.ReadableStream), length: number): Promise<unknown> {
    const id = this.#nextId();
    this.ids.push(id);
    return this.#client.stageBlock(id, body, length, { abortSignal: this.#signal });
  }
}

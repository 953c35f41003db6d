/**
 * The S3 sink: one S3Writer per task attempt, publishing each object with a multipart upload of its
 * final key, so nothing appears in the bucket before commit.
 *
 * Attempt states: open -> committed | aborted (both final; abort after commit is a no-op, commit
 * after abort is refused). stage() creates a multipart upload for `<prefix><name>` and uploads 8 MiB
 * parts (4 in flight, from the node's pool of part buffers, so memory is bounded whatever the
 * object's size and the number of tasks) but never completes it: an
 * uncompleted upload is invisible to readers and listings. commit() completes every staged upload;
 * completion publishes the object atomically and replaces any object under that key, so a retried
 * attempt's commit replaces the earlier attempt's output. An empty object has no part to upload and
 * is written by a PutObject at commit instead, and so is a small file read directly whose source can
 * keep it open (HeldFile: read only at commit, its sha256 known from then).
 * abort() aborts every upload it created, best effort.
 * A file read directly (stageDirect) is uploaded by src/connectors/object-store/range-upload.ts: its
 * parts are sent 16 at once, each straight from its range of the file, in two pooled 256 KiB buffers.
 *
 * An attempt killed before commit or abort leaves invisible uploads behind; a bucket lifecycle rule
 * (AbortIncompleteMultipartUpload) reclaims their storage.
 */
import {
  AbortMultipartUploadCommand,
  CompleteMultipartUploadCommand,
  CreateMultipartUploadCommand,
  PutObjectCommand,
  UploadPartCommand,
  type CompletedPart,
} from '@aws-sdk/client-s3';
import { createHash, type Hash } from 'node:crypto';
import type { Readable } from 'node:stream';
import { setTimeout as sleep } from 'node:timers/promises';
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
import { checkObjectName, compileS3Sink, openS3Store, type S3Store } from './s3-config.ts';
import { cancelledError, s3Error, s3Message } from './s3-errors.ts';

/**
 * Every part but the last has this size (some S3-compatible stores require equal parts); a file
 * read directly that 10,000 such parts would not hold goes in larger equal parts (partSizeFor).
 */
export const PART_SIZE = 8 * 1024 * 1024;
/** S3's limits on one multipart upload: an object in more parts, or larger ones, is refused. */
const S3_PARTS: PartLimits = { maxParts: 10_000, maxPartSize: 5 * 1024 * 1024 * 1024 };
/** Parts of an object staged from a stream uploading at once (each holds a pooled part buffer). */
const PARTS_IN_FLIGHT = 4;
/**
 * Part buffers for objects staged from streams in the whole node (48 MiB, one slab), a pool of its
 * UploadBudget shared by every upload: an upload waits for a free one, whatever the number of tasks
 * running at once.
 */
const STREAM_PARTS: PoolSize = { count: 6, size: PART_SIZE };
/** Tries of a part sent from a file's range (the SDK tries a buffer's itself), and the pause after the first. */
const PART_TRIES = 3;
const PART_RETRY_MS = 200;
/** Objects completed at once by commit(). */
const COMMITS_IN_FLIGHT = 8;

type WriterState = 'open' | 'committed' | 'aborted';

interface Upload {
  key: string;
  uploadId: string;
}

interface StagedUpload {
  object: StagedObject;
  key: string;
  /** undefined for an empty object or a held file, published by PutObject at commit. */
  upload: Upload | undefined;
  parts: CompletedPart[];
  /** A small file read and put whole at commit. */
  held?: HeldFile;
}

export async function openS3Writer(sink: ResolvedEndpointT, ctx: AttemptContext): Promise<S3Writer> {
  const options = compileS3Sink(sink);
  if (ctx.signal.aborted) throw cancelledError(sink.linkedService, 'open');
  return new S3Writer(openS3Store(sink), options.prefix, ctx);
}

export class S3Writer implements SinkWriter {
  readonly #store: S3Store;
  readonly #prefix: string;
  readonly #ctx: AttemptContext;
  readonly #staged = new Map<string, StagedUpload>();
  /** Every upload this attempt created, staged or not, so abort() can discard them all. */
  readonly #uploads = new Set<Upload>();
  #state: WriterState = 'open';

  constructor(store: S3Store, prefix: string, ctx: AttemptContext) {
    this.#store = store;
    this.#prefix = prefix;
    this.#ctx = ctx;
  }

  async stage({ name, stream }: StageInput): Promise<StagedObject> {
    // A source failure before pipeline() listens is kept by the stream and rejects pipeline() later.
    stream.on('error', () => {});
    let normal: string;
    try {
      normal = this.#checkStage(name);
    } catch (err) {
      // The stream is ours once handed over: refusing it must not leave its source open.
      stream.destroy();
      throw err;
    }
    return this.#stageParts(
      normal,
      (o) =>
        uploadStream({
          stream,
          pool: this.#ctx.uploadBudget.pool(STREAM_PARTS),
          partSize: PART_SIZE,
          limits: S3_PARTS,
          limit: PARTS_IN_FLIGHT,
          message: (text) => s3Message(this.#store.linkedService, `${normal} ${text} (stage)`),
          ...o,
        }),
      // pipeline() destroys the source when it fails; a failure before it started must do the same.
      () => stream.destroy(),
    );
  }

  /**
   * A file read directly. A small one whose source can keep it open is held (HeldFile,
   * src/connectors/object-store/held-file.ts) and put whole at commit: one request instead of three (create,
   * part, complete). Otherwise uploadDirect sends its parts.
   */
  async stageDirect(name: string, direct: DirectRead): Promise<StagedObject> {
    const normal = this.#checkStage(name);
    const message =
      (operation: string) =>
      (text: string): string =>
        s3Message(this.#store.linkedService, `${normal} ${text} (${operation})`);
    // Nothing awaited since the check that the attempt is open: an abort cannot have come between.
    const held = HeldFile.hold(direct, this.#ctx.uploadBudget, message('commit'));
    if (held) {
      // Its sha256 is known once the commit has read it (#publish).
      const object = { name: normal, bytes: held.size, sha256: '' };
      return this.#keep({ object, key: this.#prefix + normal, upload: undefined, parts: [], held });
    }
    return this.#stageParts(normal, (o) =>
      uploadDirect({
        direct,
        budget: this.#ctx.uploadBudget,
        partSize: PART_SIZE,
        limits: S3_PARTS,
        message: message('stage'),
        ...o,
      }),
    );
  }

  /** The object's normalised name, once the attempt is known to be open and not cancelled. */
  #checkStage(name: string): string {
    const ls = this.#store.linkedService;
    this.#assertOpen('stage');
    if (this.#ctx.signal.aborted) throw cancelledError(ls, 'stage');
    return checkObjectName(ls, name);
  }

  /**
   * One object as parts of a multipart upload of its key, created with the first part (an empty
   * object has none, and is published by PutObject at commit): `upload` reads it, hashing every
   * byte and sending its parts, and returns its size. On failure the upload is aborted.
   */
  async #stageParts(
    normal: string,
    upload: (o: {
      uploads: PartUploads;
      hash: Hash;
      signal: AbortSignal;
      stop: (error: unknown) => void;
      send: (index: number, body: PartBody, length: number) => Promise<void>;
    }) => Promise<number>,
    release: () => void = () => {},
  ): Promise<StagedObject> {
    const ls = this.#store.linkedService;
    const key = this.#prefix + normal;
    const stage = new StageSignal(this.#ctx.signal);
    const { signal, stop } = stage;
    const uploads = new PartUploads();
    const hash = createHash('sha256');
    const parts: CompletedPart[] = [];
    let creating: Promise<Upload> | undefined;
    const send = async (index: number, part: PartBody, length: number): Promise<void> => {
      const { uploadId } = await (creating ??= this.#createUpload(key, signal));
      // The SDK tries a buffer's request again itself, not one with a stream body: a part sent
      // from a file's range is tried again here, with a new body that rereads the range, when the
      // failure is one a retry can help.
      for (let tries = 1; ; tries++) {
        const body = 'buffer' in part ? part.buffer : part.body();
        try {
          parts.push(await this.#uploadPart(key, uploadId, index + 1, body, length, signal));
          return;
        } catch (err) {
          const again = 'body' in part && tries < PART_TRIES && !signal.aborted;
          if (!again || !s3Error(err, ls, { bucket: this.#store.bucket, key }, 'stage').retryable) throw err;
          await sleep(PART_RETRY_MS * tries, undefined, { signal });
        }
      }
    };
    let bytes: number;
    try {
      bytes = await upload({ uploads, hash, signal, stop, send });
    } catch (err) {
      release();
      const failure = stage.fail(err);
      await uploads.settle();
      const created = await creating?.catch(() => undefined);
      if (created) await this.#abortUpload(created);
      if (this.#ctx.signal.aborted) throw cancelledError(ls, 'stage');
      throw s3Error(failure, ls, { bucket: this.#store.bucket, key }, 'stage');
    }
    parts.sort((a, b) => (a.PartNumber ?? 0) - (b.PartNumber ?? 0));
    const object = { name: normal, bytes, sha256: hash.digest('hex') };
    return this.#keep({ object, key, upload: await creating, parts });
  }

  /** Records a staged object. Staged twice in one attempt: the later copy wins, as a rename would. */
  async #keep(staged: StagedUpload): Promise<StagedObject> {
    const earlier = this.#staged.get(staged.object.name);
    earlier?.held?.release();
    if (earlier?.upload) await this.#abortUpload(earlier.upload);
    this.#staged.set(staged.object.name, staged);
    return staged.object;
  }

  async commit(): Promise<void> {
    if (this.#state === 'committed') return;
    this.#assertOpen('commit');
    if (this.#ctx.signal.aborted) throw cancelledError(this.#store.linkedService, 'commit');
    const queue = [...this.#staged.values()].sort((a, b) => (a.key < b.key ? -1 : a.key > b.key ? 1 : 0));
    // A failure part way leaves some objects published: the retried attempt's commit replaces them.
    const worker = async (): Promise<void> => {
      for (let next = queue.shift(); next !== undefined; next = queue.shift()) await this.#publish(next);
    };
    await Promise.all(Array.from({ length: Math.min(COMMITS_IN_FLIGHT, queue.length) }, worker));
    this.#state = 'committed';
    this.#store.client.destroy();
  }

  async abort(): Promise<void> {
    if (this.#state !== 'open') return;
    this.#state = 'aborted';
    for (const staged of this.#staged.values()) staged.held?.release();
    await Promise.all([...this.#uploads].map((u) => this.#abortUpload(u)));
    this.#store.client.destroy();
  }

  async #publish(staged: StagedUpload): Promise<void> {
    const { bucket, client } = this.#store;
    const signal = { abortSignal: this.#ctx.signal };
    try {
      if (staged.held) {
        await staged.held.publish(this.#ctx.signal, (body) =>
          client.send(
            new PutObjectCommand({ Bucket: bucket, Key: staged.key, Body: body, ContentLength: body.length }),
            signal,
          ),
        );
        staged.object.sha256 = staged.held.sha256;
      } else if (staged.upload === undefined) {
        await client.send(
          new PutObjectCommand({ Bucket: bucket, Key: staged.key, Body: Buffer.alloc(0), ContentLength: 0 }),
          signal,
        );
      } else {
        await client.send(
          new CompleteMultipartUploadCommand({
            Bucket: bucket,
            Key: staged.key,
            UploadId: staged.upload.uploadId,
            MultipartUpload: { Parts: staged.parts },
          }),
          signal,
        );
        this.#uploads.delete(staged.upload);
      }
    } catch (err) {
      throw s3Error(err, this.#store.linkedService, { bucket, key: staged.key }, 'commit');
    } finally {
      staged.held?.release();
    }
  }

  async #createUpload(key: string, signal = this.#ctx.signal): Promise<Upload> {
    const { bucket, client } = this.#store;
    const created = await client.send(new CreateMultipartUploadCommand({ Bucket: bucket, Key: key }), {
      abortSignal: signal,
    });
    if (created.UploadId === undefined) {
      throw new FerryError(
        'store_error',
        s3Message(this.#store.linkedService, `no upload id for ${JSON.stringify(key)} (stage)`),
      );
    }
    const upload = { key, uploadId: created.UploadId };
    this.#uploads.add(upload);
    return upload;
  }

  async #uploadPart(
    key: string,
    uploadId: string,
    partNumber: number,
    body: Buffer | Readable,
    length = (body as Buffer).length,
    signal = this.#ctx.signal,
  ): Promise<CompletedPart> {
    const { bucket, client } = this.#store;
    const sent = await client.send(
      new UploadPartCommand({
        Bucket: bucket,
        Key: key,
        UploadId: uploadId,
        PartNumber: partNumber,
        Body: body,
        ContentLength: length,
      }),
      { abortSignal: signal },
    );
    return { ETag: sent.ETag, PartNumber: partNumber };
  }

  /** Best effort: an upload left behind is invisible, and some emulators lack AbortMultipartUpload. */
  async #abortUpload(upload: Upload): Promise<void> {
    this.#uploads.delete(upload);
    try {
      await this.#store.client.send(
        new AbortMultipartUploadCommand({
          Bucket: this.#store.bucket,
          Key: upload.key,
          UploadId: upload.uploadId,
        }),
      );
    } catch {
      // Nothing to do: see above.
    }
  }

  #assertOpen(operation: string): void {
    if (this.#state !== 'open') {
      throw new FerryError(
        'conflict',
        s3Message(
          this.#store.linkedService,
          `attempt ${this.#ctx.attemptId} is ${this.#state} (${operation})`,
        ),
      );
    }
  }
}

/**
 * A stream (a table encoded on the way, a file a source can only stream) uploaded to an object store
 * in parts, its size not known ahead.
 */
import type { Hash } from 'node:crypto';
import type { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import type { BufferPool } from '../../common/buffer-pool.ts';
import { FerryError } from '../../common/errors.ts';
import { MiB, type PartBody, type PartLimits, type PartUploads } from './part-uploads.ts';

/** How much of an object staged from a stream is held in its own chunks before it takes a buffer. */
const HOLD_BYTES = 1024 * 1024;

export interface StreamUpload {
  stream: Readable;
  /** Where full-size parts come from: the sink's pool in the node's UploadBudget, buffers of `partSize`. */
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

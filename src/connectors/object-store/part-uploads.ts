/**
 * The parts of one object uploaded in parts (Azure's blocks, S3's multipart upload): what a part's
 * body is, what a store takes of one object, the part size a file needs, and the uploads of one
 * object's parts, a limited number at once, the first failure kept.
 */
import type { Readable } from 'node:stream';
import { FerryError } from '../../common/errors.ts';

export const MiB = 1024 * 1024;

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

/**
 * The part size for a file of `size` bytes: the sink's own, or, when the store's part count would
 * not hold the file in parts of that size, the smallest whole number of MiB that does. A part sent
 * from a file's range costs the same memory whatever its size (range-upload.ts). A file no parts can
 * hold is refused before anything is sent.
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

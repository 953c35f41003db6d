/**
 * Range buffer pairs: what a file read directly (SourceObject.direct) is read into on its way to an
 * object store. A part sent from a range of the file goes out through the two halves of a pair (one
 * read into while the other is sent: range-upload.ts); a file smaller than a pair is read into one
 * whole (readWhole) and sent as one request. The node's pairs are one pool (UploadBudget), whichever
 * sink they serve: one per range being sent, per hash pass, and per small file read whole.
 */
import type { PoolSize } from '../../common/buffer-pool.ts';
import { FerryError } from '../../common/errors.ts';
import type { DirectRead } from '../../tables/object-reads.ts';

/** A range goes out in pieces of this size, through two buffers: one read into, one being sent. */
export const RANGE_CHUNK = 256 * 1024;
/** Range buffer pairs in the whole node (16 MiB, one slab). */
export const RANGE_PAIRS: PoolSize = { count: 32, size: 2 * RANGE_CHUNK };
/** A file read directly and smaller than this is read whole into one pair and sent as one part. */
export const WHOLE_READ_BELOW = RANGE_PAIRS.size;

/** The error for a file that ended before or after the size it was opened with. */
export async function changedError(direct: DirectRead, message: (text: string) => string): Promise<unknown> {
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
export async function readWhole(
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

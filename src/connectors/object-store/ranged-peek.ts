/**
 * SourceObject.peek for an object store: ranged reads of the object's version as it was opened,
 * clamped to its size (a range past the end is not asked for), each store error framed by the
 * store's own mapping.
 */
import type { FilePeek } from '../../tables/object-reads.ts';

export function rangedPeek(
  size: number,
  /** `count` (> 0) bytes from `position`, all within the object. */
  fetch: (position: number, count: number) => Promise<Buffer>,
  /** The FerryError for a failed fetch (cancelled when the copy's signal has aborted). */
  failure: (err: unknown) => Error,
): FilePeek {
  return {
    size,
    async read(position, length) {
      const count = Math.min(length, size - position);
      if (count <= 0) return Buffer.alloc(0);
      try {
        return await fetch(position, count);
      } catch (err) {
        throw failure(err);
      }
    },
  };
}

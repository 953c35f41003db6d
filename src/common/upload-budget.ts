/**
 * What uploads may hold in the whole node, whatever the number of tasks running at once: pooled
 * buffers (buffer-pool.ts; an upload waits for a free one) and small files kept open until commit
 * (the object-store sinks' HeldFile, src/connectors/object-store/held-file.ts). The node makes one
 * (src/node/node-agent.ts) and hands it to every attempt it runs (AttemptContext.uploadBudget); a
 * test makes its own, so what it holds and waits for is not another test's.
 */
import { BufferPool, type PoolSize } from './buffer-pool.ts';

/** Files kept open until commit in the whole node; past this a small file is staged at once. */
export const HELD_FILES_MAX = 1024;

export class UploadBudget {
  readonly #pools = new Map<PoolSize, BufferPool>();
  #heldFiles = 0;

  /**
   * The node's pool of `size.count` buffers of `size.size` bytes, made on first use; the same
   * PoolSize (a constant of the module that uses it) always gives the same pool.
   */
  pool(size: PoolSize): BufferPool {
    let pool = this.#pools.get(size);
    if (!pool) {
      pool = new BufferPool(size);
      this.#pools.set(size, pool);
    }
    return pool;
  }

  /** Takes one of the HELD_FILES_MAX files the node may keep open; false when all are taken. */
  holdFile(): boolean {
    if (this.#heldFiles >= HELD_FILES_MAX) return false;
    this.#heldFiles++;
    return true;
  }

  /** Gives back a file holdFile() took. */
  letFileGo(): void {
    this.#heldFiles--;
  }
}

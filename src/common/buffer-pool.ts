/**
 * Large buffers shared by every task of the node that holds one for a while (an upload's part, a
 * range being sent): `count` of `size` bytes cut from one slab, reused once their holder gives them
 * back, and dropped when no one holds any. Beside chunk-pool.ts, which lends small read buffers to
 * sockets; these are taken and given back by one owner, and a taker waits for a free one.
 *
 * Why: this bounds what the holders hold whatever the number of tasks running at once (a taker waits
 * for a free buffer), and fresh buffers would be garbage the moment they are sent, piling up outside
 * V8's heap until a full collection. A slab above glibc's largest mmap threshold (32 MiB) is its own
 * mapping, returned to the system whole when dropped; separate large buffers would come from the heap
 * once the threshold had adapted, and the process would keep that memory. A slab is made only when a
 * holder needs it.
 */

/** How many buffers a pool has, and their size in bytes. */
export interface PoolSize {
  count: number;
  size: number;
}

export class BufferPool {
  readonly #free: Buffer[] = [];
  readonly #waiting: ((block: Buffer) => void)[] = [];
  readonly #count: number;
  readonly #size: number;
  #slab: Buffer | undefined;

  constructor({ count, size }: PoolSize) {
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
    // Every buffer is back: nothing is running that needs one, and an idle node keeps none.
    if (this.#free.length === this.#count) {
      this.#free.length = 0;
      this.#slab = undefined;
    }
  }
}

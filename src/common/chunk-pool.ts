/**
 * Pooled read buffers for the sockets that carry a copy's bulk data (a PostgreSQL COPY, a Parquet
 * converter's output). Such a socket reads into 64 KiB buffers taken from a node-wide pool and
 * hands each read on as a chunk; the stage that finally consumes the chunk (the write into a
 * converter's pipe, a file sink's gather buffer) gives it back, and it is read into again.
 *
 * Why: by default every socket read allocates a buffer of its own, and V8 frees those only in
 * full collections, which it starts after every 64 MB or so of them. A node converting a table to
 * Parquet spent 29% of its CPU in the collector (bench/README.md).
 *
 * The rule that keeps data safe: only the last holder of a chunk releases it, after its last use
 * (a write's callback, a copy), and a stage that passes a chunk on keeps no reference to it. A
 * chunk nobody releases is collected as before, so a consumer that does not know the pool costs
 * nothing but the saving. Releasing what is not a lent pool buffer (a string, any other Buffer, a
 * buffer already back) does nothing. With FERRY_POISON_RELEASED=1 (`npm test` sets it) a released
 * buffer is overwritten at once, so a chunk used after its release shows up in the tests as
 * corrupted output.
 */
import { Socket, type SocketConstructorOpts } from 'node:net';
import { readEnv } from './config.ts';

export const CHUNK_BYTES = 64 * 1024;
/**
 * A read smaller than this is copied out and its buffer read into again: a 64 KiB buffer carrying a
 * few hundred bytes through the streams would hold memory their limits do not count.
 */
const COPY_BELOW = 8 * 1024;
/** Buffers kept for reuse, node-wide (4 MiB). */
const IDLE_MAX = 64;
const POISON = 0xee;

const lent = new WeakSet<ArrayBufferLike>();
const idle: Buffer[] = [];
/** Read once, on the first release, not at import. */
let poison: boolean | undefined;

/** A pool buffer of CHUNK_BYTES, lent until released (or kept). */
export function takeChunk(): Buffer {
  const buf = idle.pop() ?? Buffer.allocUnsafeSlow(CHUNK_BYTES);
  lent.add(buf.buffer);
  return buf;
}

/** Gives a chunk's buffer back to the pool; anything else is left alone. */
export function releaseChunk(chunk: Buffer | string): void {
  if (typeof chunk === 'string' || !lent.has(chunk.buffer)) return;
  lent.delete(chunk.buffer);
  const whole = Buffer.from(chunk.buffer, 0, CHUNK_BYTES);
  if ((poison ??= readEnv().poisonReleased)) whole.fill(POISON);
  if (idle.length < IDLE_MAX) idle.push(whole);
}

/** Whether the chunk is in a pool buffer now lent (a read handed over in place, not a copy). */
export function isLent(chunk: Buffer): boolean {
  return lent.has(chunk.buffer);
}

/** The chunk stays with whoever holds it: its buffer is never lent again. */
export function keepChunk(chunk: Buffer): void {
  lent.delete(chunk.buffer);
}

/**
 * A socket that reads into pool buffers and gives each read to `take`, which owns the chunk from
 * then on (to pass on, release or keep). `take` answers false to stop reading until the socket's
 * resume(). The socket emits no 'data' of its own.
 */
export function pooledSocket(
  options: Omit<SocketConstructorOpts, 'onread'>,
  take: (chunk: Buffer) => boolean,
): Socket {
  return new Socket({
    ...options,
    onread: {
      buffer: takeChunk,
      callback(n: number, buf: Uint8Array): boolean {
        const read = buf as Buffer;
        if (n >= COPY_BELOW) return take(read.subarray(0, n));
        const copy = Buffer.from(read.subarray(0, n));
        releaseChunk(read);
        return take(copy);
      },
    },
  });
}

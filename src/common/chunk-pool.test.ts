import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { createServer, type AddressInfo, type Server } from 'node:net';
import { after, before, describe, it } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { CHUNK_BYTES, isLent, keepChunk, pooledSocket, releaseChunk, takeChunk } from './chunk-pool.ts';
import { readEnv } from './config.ts';

describe('chunk pool', () => {
  it('lends a buffer of CHUNK_BYTES and lends it again once it is given back', () => {
    const a = takeChunk();
    assert.equal(a.length, CHUNK_BYTES);
    const memory = a.buffer;
    releaseChunk(a.subarray(0, 100)); // a chunk is a read's part of its buffer
    assert.equal(takeChunk().buffer, memory);
  });

  it('ignores what is not a lent pool buffer: strings, other buffers, a second release', () => {
    const a = takeChunk();
    releaseChunk('text');
    releaseChunk(Buffer.alloc(CHUNK_BYTES));
    releaseChunk(a);
    releaseChunk(a);
    const first = takeChunk();
    const second = takeChunk();
    assert.equal(first.buffer, a.buffer);
    assert.notEqual(second.buffer, a.buffer, 'a buffer released twice is lent once');
  });

  it('never lends again a buffer someone keeps', () => {
    const a = takeChunk();
    keepChunk(a);
    releaseChunk(a);
    assert.notEqual(takeChunk().buffer, a.buffer);
  });

  it('overwrites a released buffer under npm test, so a use after release shows', (t) => {
    if (!readEnv().poisonReleased) return t.skip('FERRY_POISON_RELEASED is not set');
    const a = takeChunk();
    a.fill(0x41);
    releaseChunk(a);
    assert.ok(a.every((b) => b === 0xee));
  });
});

describe('pooled sockets', () => {
  let server: Server;
  let port = 0;
  /** 3 MiB in large writes, then 40 writes of 100 bytes apart in time (small reads). */
  const big = randomBytes(3 * 1024 * 1024);
  const small = randomBytes(40 * 100);
  before(async () => {
    server = createServer((s) => {
      void (async () => {
        s.write(big);
        for (let i = 0; i < 40; i++) {
          await sleep(2);
          s.write(small.subarray(i * 100, (i + 1) * 100));
        }
        s.end();
      })();
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    port = (server.address() as AddressInfo).port;
  });
  after(() => new Promise<void>((resolve) => server.close(() => resolve())));

  it('hands large reads over in pool buffers and small ones as copies, pausing when asked', async () => {
    const hash = createHash('sha256');
    let bytes = 0;
    let pooled = 0;
    let copied = 0;
    let paused = false;
    let calledWhilePaused = 0;
    let reads = 0;
    const socket = pooledSocket({}, (chunk) => {
      if (paused) calledWhilePaused++;
      reads++;
      hash.update(chunk);
      bytes += chunk.length;
      if (isLent(chunk)) pooled++;
      else copied++;
      releaseChunk(chunk); // overwritten under npm test: the next reads must not see it
      if (reads % 10 !== 0) return true;
      paused = true;
      setTimeout(() => {
        paused = false;
        socket.resume();
      }, 10);
      return false;
    });
    const ended = new Promise<void>((resolve, reject) => {
      socket.once('end', resolve);
      socket.once('error', reject);
    });
    socket.connect(port, '127.0.0.1');
    await ended;
    socket.destroy();
    assert.equal(bytes, big.length + small.length);
    assert.equal(hash.digest('hex'), createHash('sha256').update(big).update(small).digest('hex'));
    assert.ok(pooled > 0, 'large reads came in pool buffers');
    assert.ok(copied > 0, 'small reads came as copies');
    assert.equal(calledWhilePaused, 0, 'no read while paused');
  });
});

import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { BufferPool } from './buffer-pool.ts';

describe('BufferPool', () => {
  it('lends count buffers of size cut from one slab, and makes a taker wait for one given back', async () => {
    const pool = new BufferPool({ count: 2, size: 1024 });
    const signal = new AbortController().signal;
    const a = await pool.take(signal);
    const b = await pool.take(signal);
    assert.equal(a.length, 1024);
    assert.equal(a.buffer, b.buffer, 'one slab');
    let third: Buffer | undefined;
    const waiting = pool.take(signal).then((buf) => (third = buf));
    await Promise.resolve();
    assert.equal(third, undefined, 'no third buffer while two are taken');
    pool.give(a);
    assert.equal(await waiting, a, 'the waiter gets the buffer given back');
    pool.give(b);
    pool.give(a);
  });

  it('lets a waiting taker go when its signal aborts, and drops the slab once every buffer is back', async () => {
    const pool = new BufferPool({ count: 1, size: 16 });
    const only = await pool.take(new AbortController().signal);
    const stop = new AbortController();
    const waiting = pool.take(stop.signal);
    stop.abort(new Error('stopped'));
    await assert.rejects(waiting, /stopped/);
    pool.give(only);
    const next = await pool.take(new AbortController().signal);
    assert.notEqual(next.buffer, only.buffer, 'an idle pool keeps no slab');
    pool.give(next);
  });
});

/**
 * The heartbeat loop in-process, its sends held at a gate: the test answers or fails each beat, and
 * watches what the subscribers hear.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import pino from 'pino';
import { HeartbeatLoop, LOST_AFTER, type LostService } from './heartbeat-loop.ts';
import { FerryError } from '../common/errors.ts';
import { Gate, deferred } from './test-gates.ts';

interface Reply {
  heartbeatIntervalMs: number;
  n: number;
}

/** A loop beating without a pause (interval 0) unless told otherwise, and what its subscribers heard. */
function harness(intervalMs = 0) {
  const sends = new Gate<[], Reply>();
  const loop = new HeartbeatLoop<Reply>({ send: sends.fn, intervalMs, log: pino({ level: 'silent' }) });
  const heard: string[] = [];
  const lost: LostService[] = [];
  loop.onReply((r) => void heard.push(`reply ${r.n}`));
  loop.onMissed((err, inARow) => void heard.push(`missed ${inARow} ${err.code}`));
  loop.onLost((l) => {
    lost.push(l);
    heard.push(`lost${l.forGood ? ' for good' : ''}`);
  });
  return { sends, loop, heard, lost };
}

const reply = (n: number, heartbeatIntervalMs = 0): Reply => ({ heartbeatIntervalMs, n });
const outage = (): FerryError => new FerryError('unavailable', 'service http://s: connection refused');

test('every reply reaches the subscribers in order, an async one awaited before the next beat is sent', async () => {
  const { sends, loop, heard } = harness();
  const probing = deferred<undefined>();
  const probeStarted = deferred<undefined>();
  const order: string[] = [];
  loop.onReply(async (r) => {
    order.push(`probe ${r.n} starts`);
    probeStarted.resolve(undefined);
    await probing.promise; // like the peer probe after each heartbeat
    order.push(`probe ${r.n} ends, ${sends.calls.length} beats sent`);
  });
  loop.start();
  (await sends.next()).resolve(reply(1));
  await probeStarted.promise;
  // Give a loop that would not wait every chance to send again (a few timer turns), then end the probe.
  for (let turn = 0; turn < 3; turn++) await new Promise((r) => setTimeout(r, 0));
  probing.resolve(undefined);
  const second = await sends.next();
  const stopped = loop.stop();
  second.resolve(reply(2));
  await stopped;
  assert.deepEqual(order, [
    'probe 1 starts',
    'probe 1 ends, 1 beats sent',
    'probe 2 starts',
    'probe 2 ends, 2 beats sent',
  ]);
  assert.deepEqual(heard, ['reply 1', 'reply 2'], 'the subscriber before it heard each reply first');
  assert.equal(sends.calls.length, 2);
});

test('beats missed in a row are heard each time, the service lost once at the third; a reply brings it back', async () => {
  const { sends, loop, heard, lost } = harness();
  loop.start();
  for (let i = 0; i < LOST_AFTER + 1; i++) (await sends.next()).reject(outage());
  (await sends.next()).resolve(reply(1));
  for (let i = 0; i < LOST_AFTER; i++) (await sends.next()).reject(outage());
  const last = await sends.next();
  const stopped = loop.stop();
  last.resolve(reply(2));
  await stopped;
  assert.deepEqual(heard, [
    'missed 1 unavailable',
    'missed 2 unavailable',
    'missed 3 unavailable',
    'lost',
    'missed 4 unavailable',
    'reply 1',
    'missed 1 unavailable',
    'missed 2 unavailable',
    'missed 3 unavailable',
    'lost',
    'reply 2',
  ]);
  assert.ok(lost.every((l) => !l.forGood && l.error.code === 'unavailable'));
});

test('a refusal (unauthorized) loses the service for good and ends the loop', async () => {
  const { sends, loop, heard, lost } = harness();
  loop.start();
  (await sends.next()).resolve(reply(1));
  (await sends.next()).reject(new FerryError('unauthorized', 'unknown node token'));
  await loop.stop(); // the loop has ended on its own: nothing to wait for
  assert.deepEqual(heard, ['reply 1', 'lost for good']);
  assert.equal(lost[0]?.error.message, 'unknown node token');
  assert.equal(sends.calls.length, 2, 'no beat after the refusal');
});

test('a subscriber that throws fails the beat: the subscribers after it do not hear that reply', async () => {
  const { sends, loop, heard } = harness();
  const later: number[] = [];
  let fail = true;
  loop.onReply((r) => {
    if (fail) throw new FerryError('bad_request', `reply ${r.n} holds a bad key`);
  });
  loop.onReply((r) => void later.push(r.n));
  loop.start();
  (await sends.next()).resolve(reply(1));
  const second = await sends.next();
  fail = false;
  second.resolve(reply(2));
  const third = await sends.next(); // the second was taken
  const stopped = loop.stop();
  third.resolve(reply(3));
  await stopped;
  assert.deepEqual(later, [2, 3]);
  assert.deepEqual(heard, ['reply 1', 'missed 1 bad_request', 'reply 2', 'reply 3']);
});

test('stop() ends the wait between beats at once, and no beat follows', async () => {
  const { sends, loop } = harness(600_000);
  loop.start();
  (await sends.next()).resolve(reply(1, 600_000));
  await loop.stop(); // would hang for ten minutes if it waited out the interval
  assert.equal(sends.calls.length, 1);
});

test('beat() sends one now: its reply goes to the subscribers, its failure only to the caller', async () => {
  const { sends, loop, heard, lost } = harness();
  const now = loop.beat();
  (await sends.next()).resolve(reply(7));
  assert.deepEqual(await now, reply(7));
  const failing = loop.beat();
  (await sends.next()).reject(new FerryError('unauthorized', 'unknown node token'));
  await assert.rejects(failing, /unknown node token/);
  assert.deepEqual(heard, ['reply 7'], 'a beat outside the loop is neither missed nor loses the service');
  assert.deepEqual(lost, []);
  await loop.stop(); // never started: resolves at once
});

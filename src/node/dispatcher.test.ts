/**
 * The Dispatcher in-process, with gates instead of sleeps: every claim, delivery and release waits
 * at a gate until the test settles it, and the clock is fake (the idle wait and the claim backoff
 * pass only when the test moves it), so each step is taken exactly when the test says.
 */
import { test, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import pino from 'pino';
import { Dispatcher } from './dispatcher.ts';
import { Gate } from './test-gates.ts';
import { FerryError } from '../common/errors.ts';
import type { AssignedAttemptT, ClaimRequestT, ClaimResponseT, PeerViewT } from '../protocol/agent.ts';
import type { DispatchRequestT } from '../protocol/peer.ts';

const SELF = 'node-self';

function peer(name: string, eligible = true, limit = 4): PeerViewT {
  return {
    nodeId: `node-${name}`,
    name,
    url: `http://${name}:8060`,
    eligible,
    limit,
    running: 0,
    signPublicKey: null,
  };
}

function attempt(id: string, nodeId: string, epoch: number): AssignedAttemptT {
  return {
    attemptId: id,
    taskId: `task-${id}`,
    nodeId,
    epoch,
    queuedAt: 1_700_000_000_000,
    spec: {
      runId: 'run-1',
      activity: 'copy',
      source: { type: 'filesystem', linkedService: 'src', properties: { root: '/in' }, options: {} },
      sink: { type: 'filesystem', linkedService: 'dst', properties: { root: '/out' }, options: {} },
      work: { kind: 'copy', index: 0, partition: { kind: 'files', files: [{ path: 'a', size: 1 }] } },
    },
  };
}

/** Lets every promise chain that can move without the clock or I/O run to its end. */
const settle = (): Promise<void> => new Promise((resolve) => setImmediate(resolve));

/** A Dispatcher whose claims, deliveries and releases wait at gates, on a fake clock. */
function harness(t: TestContext) {
  t.mock.timers.enable({ apis: ['setTimeout'] });
  const claims = new Gate<[ClaimRequestT, AbortSignal], ClaimResponseT>();
  const deliveries = new Gate<[PeerViewT | 'self', DispatchRequestT], void>();
  const releases = new Gate<[string, string], void>();
  const self = { eligible: true, limit: 2 };
  const dispatcher = new Dispatcher({
    selfId: SELF,
    claim: (req, signal) => {
      const claimed = claims.fn(req, signal);
      const call = claims.calls.at(-1);
      // Like the service client: an aborted long-poll fails at once.
      signal.addEventListener('abort', () => call?.reject(signal.reason), { once: true });
      return claimed;
    },
    deliver: deliveries.fn,
    release: releases.fn,
    self: () => ({ ...self }),
    log: pino({ level: 'silent' }),
    claimWaitMs: 1_000,
  });
  t.after(() => dispatcher.stop());
  return { dispatcher, claims, deliveries, releases, self };
}

test('claims only while the service names it dispatcher, under the epoch it named it in', async (t) => {
  const h = harness(t);
  h.dispatcher.update('worker', 4, [peer('a')]);
  await settle();
  assert.equal(h.claims.calls.length, 0, 'a worker claims nothing');
  assert.equal(h.dispatcher.active, false);

  h.dispatcher.update('dispatcher', 5, [peer('a')], 'lease-5');
  const first = await h.claims.next();
  assert.equal(first.args[0].epoch, 5);
  assert.equal(first.args[0].waitMs, 1_000);
  first.resolve({ attempts: [] });
  const second = await h.claims.next(); // an empty long-poll: the next one at once
  assert.equal(second.args[0].epoch, 5);

  // A new epoch (the role lost and won back meanwhile): the old claim is dropped, one under the new follows.
  h.dispatcher.update('dispatcher', 6, [peer('a')], 'lease-6');
  const third = await h.claims.next();
  assert.equal(second.args[1].aborted, true);
  assert.equal(third.args[0].epoch, 6);

  // The role lost: the claim in flight is dropped and none follows, however long it waits.
  h.dispatcher.update('worker', 7, [peer('a')]);
  assert.equal(third.args[1].aborted, true);
  t.mock.timers.tick(60_000);
  await settle();
  assert.equal(h.claims.calls.length, 3);
  assert.equal(h.dispatcher.active, false);
});

test('offers itself and every eligible peer, each up to its limit; a heartbeat refreshes the peers', async (t) => {
  const h = harness(t);
  h.dispatcher.update('dispatcher', 1, [peer('a', true, 3), peer('b', false, 8)], 'lease');
  const first = await h.claims.next();
  assert.deepEqual(first.args[0].slots, [
    { nodeId: SELF, free: 2 },
    { nodeId: 'node-a', free: 3 },
  ]);
  // Draining (or not Online), this node offers only its peers; b became eligible, with a new limit.
  h.self.eligible = false;
  h.dispatcher.update('dispatcher', 1, [peer('a', true, 5), peer('b', true, 1)], 'lease');
  first.resolve({ attempts: [] });
  const second = await h.claims.next();
  assert.deepEqual(second.args[0].slots, [
    { nodeId: 'node-a', free: 5 },
    { nodeId: 'node-b', free: 1 },
  ]);
});

test('hands each claimed attempt to its worker with the epoch and lease; the next claim waits for every hand', async (t) => {
  const h = harness(t);
  const a = peer('a');
  h.dispatcher.update('dispatcher', 3, [a], 'lease-3');
  (await h.claims.next()).resolve({
    attempts: [attempt('at-1', SELF, 3), attempt('at-2', a.nodeId, 3)],
  });
  const toSelf = await h.deliveries.next();
  const toA = await h.deliveries.next();
  assert.equal(toSelf.args[0], 'self');
  assert.deepEqual(toSelf.args[1], { epoch: 3, attempt: attempt('at-1', SELF, 3), lease: 'lease-3' });
  assert.deepEqual(toA.args[0], a);
  assert.equal(toA.args[1].attempt.attemptId, 'at-2');
  assert.equal(toA.args[1].lease, 'lease-3');

  toSelf.resolve();
  await settle();
  assert.equal(h.claims.calls.length, 1, 'no claim while a hand is still under way');
  // The service renewed the lease token under the same epoch: the next dispatches carry the new one.
  h.dispatcher.update('dispatcher', 3, [a], 'lease-3b');
  toA.resolve();
  (await h.claims.next()).resolve({ attempts: [attempt('at-3', a.nodeId, 3)] });
  assert.equal((await h.deliveries.next()).args[1].lease, 'lease-3b');
  assert.deepEqual(h.releases.calls, [], 'everything delivered: nothing given back');
});

test('gives back to the service an attempt it could not hand over, saying to whom and why', async (t) => {
  const h = harness(t);
  const a = peer('a');
  h.dispatcher.update('dispatcher', 2, [a], 'lease');
  (await h.claims.next()).resolve({
    attempts: [attempt('refused', a.nodeId, 2), attempt('stranger', 'node-gone', 2)],
  });
  // A node the heartbeat does not list is given back without being tried.
  const gone = await h.releases.next();
  assert.equal(gone.args[0], 'stranger');
  assert.match(gone.args[1], /could not hand the task to node-gone: .*not among this gateway's nodes/);
  const delivery = await h.deliveries.next();
  assert.equal(delivery.args[1].attempt.attemptId, 'refused');
  assert.equal(h.deliveries.calls.length, 1);
  delivery.reject(new FerryError('capacity', 'this node runs 4 tasks, its limit is 4'));
  const refused = await h.releases.next();
  assert.deepEqual(refused.args, [
    'refused',
    'could not hand the task to a: this node runs 4 tasks, its limit is 4',
  ]);
  // A release that fails is not the dispatcher's to retry (the lease lapses): claiming goes on.
  gone.reject(new FerryError('unavailable', 'service away'));
  refused.resolve();
  assert.equal((await h.claims.next()).args[0].epoch, 2);
});

test('stop() drops the claim in flight, and no claim follows', async (t) => {
  const h = harness(t);
  h.dispatcher.update('dispatcher', 1, [], 'lease');
  const inFlight = await h.claims.next();
  h.dispatcher.stop();
  assert.equal(inFlight.args[1].aborted, true);
  assert.equal(h.dispatcher.active, false);
  t.mock.timers.tick(60_000);
  await settle();
  assert.equal(h.claims.calls.length, 1);
});

test('a stale_epoch answer ends claiming; other failures are retried after a backoff', async (t) => {
  const h = harness(t);
  h.dispatcher.update('dispatcher', 1, [], 'lease');
  (await h.claims.next()).reject(new FerryError('unavailable', 'service away'));
  await settle();
  assert.equal(h.claims.calls.length, 1, 'no retry before the backoff');
  t.mock.timers.tick(100);
  const retry = await h.claims.next();
  assert.equal(retry.args[0].epoch, 1);
  retry.reject(new FerryError('stale_epoch', 'epoch 1 is over: the dispatcher is now epoch 2'));
  await settle();
  t.mock.timers.tick(60_000);
  await settle();
  assert.equal(h.claims.calls.length, 2);
  assert.equal(h.dispatcher.active, false);
});

test('with no slot to offer it waits; a poke (a slot freed) claims at once, without the clock moving', async (t) => {
  const h = harness(t);
  h.self.eligible = false;
  h.dispatcher.update('dispatcher', 1, [peer('a', false)], 'lease');
  await settle();
  assert.equal(h.claims.calls.length, 0, 'nothing to offer: no claim');
  h.self.eligible = true;
  await settle();
  assert.equal(h.claims.calls.length, 0, 'it waits until told (or the idle wait passes)');
  h.dispatcher.poke();
  await settle();
  assert.equal(h.claims.calls.length, 1, 'the poke woke it');
  assert.deepEqual(h.claims.calls[0]?.args[0].slots, [{ nodeId: SELF, free: 2 }]);
});

test('a heartbeat that makes a peer eligible wakes the idle wait too', async (t) => {
  const h = harness(t);
  h.self.eligible = false;
  h.dispatcher.update('dispatcher', 1, [peer('a', false)], 'lease');
  await settle();
  assert.equal(h.claims.calls.length, 0);
  h.dispatcher.update('dispatcher', 1, [peer('a', true, 6)], 'lease');
  await settle();
  assert.equal(h.claims.calls.length, 1, 'the heartbeat woke it');
  assert.deepEqual(h.claims.calls[0]?.args[0].slots, [{ nodeId: 'node-a', free: 6 }]);
});

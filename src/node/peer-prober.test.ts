/**
 * Probing peers: who is probed for each role, and which answers count as reached. The peer channel
 * is a fake that answers with problems as they come back over the wire.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { pingOver, probePeers, type ProbeTarget } from './peer-prober.ts';
import { FerryError, fromProblem, toProblem } from '../common/errors.ts';
import type { PeerViewT } from '../protocol/agent.ts';

const view = (id: string): PeerViewT => ({
  nodeId: id,
  name: id,
  url: `http://${id}:8060`,
  eligible: true,
  limit: 4,
  running: 0,
  signPublicKey: null,
});

/** A peer channel whose peers answer as `answers` says (undefined: a ping answered). */
function channel(answers: Record<string, FerryError | undefined>) {
  const called: string[] = [];
  return {
    called,
    call: async <T>(target: ProbeTarget): Promise<T> => {
      called.push(target.nodeId);
      const refusal = answers[target.nodeId];
      // As the peer client reads it: the problem body, over the wire.
      if (refusal) throw fromProblem(JSON.parse(JSON.stringify(toProblem(refusal))), refusal.httpStatus);
      return undefined as T;
    },
  };
}

test('a peer that does not know this node yet is reached; any other refusal, or silence, is not', async () => {
  const notYet = new FerryError('unauthorized', 'not a member', { reason: 'not_a_member' });
  const refused = new FerryError('unauthorized', 'request is signed for another node');
  const away = new FerryError('unavailable', 'connection refused');
  const peers = channel({ b: notYet, c: refused, d: away });
  const reach = await probePeers('dispatcher', 'a', ['a', 'b', 'c', 'd'].map(view), pingOver(peers, 1000));
  assert.deepEqual(reach, [
    { nodeId: 'a', ok: true },
    { nodeId: 'b', ok: true },
    { nodeId: 'c', ok: false, error: 'request is signed for another node' },
    { nodeId: 'd', ok: false, error: 'connection refused' },
  ]);
});

test('a worker probes the dispatcher, and up to three others only when the dispatcher is not reached', async () => {
  const fine = channel({});
  assert.deepEqual(await probePeers('worker', 'a', ['a', 'b', 'c'].map(view), pingOver(fine, 1000)), [
    { nodeId: 'a', ok: true },
  ]);
  assert.deepEqual(fine.called, ['a']);
  const down = channel({ a: new FerryError('unavailable', 'timed out') });
  const reach = await probePeers('worker', 'a', ['a', 'b', 'c', 'd', 'e'].map(view), pingOver(down, 1000));
  assert.deepEqual(
    reach.map((r) => [r.nodeId, r.ok]),
    [
      ['a', false],
      ['b', true],
      ['c', true],
      ['d', true],
    ],
  );
});

/**
 * Node-to-node reachability, reported in every heartbeat so the service can tell Limited from
 * Inactive and see a dead dispatcher early. Cheap by design (a gateway may have many nodes):
 * a worker probes the dispatcher, and only when that fails, up to three other peers (to tell
 * "cannot reach the dispatcher" from "cannot reach anyone"); the dispatcher probes every worker.
 */
import type { PeerReachT, PeerViewT } from '../protocol/agent.ts';
import { toFerryError } from '../common/errors.ts';
import type { PeerClient } from './peer-client.ts';

export interface ProbeTarget {
  nodeId: string;
  url: string;
}

/**
 * A probe over the peer channel: a signed ping. A peer that answers but does not know this node
 * yet (reason not_a_member: it learns members from its own heartbeat, up to an interval after
 * ours) is reachable all the same.
 */
export function pingOver(
  peers: Pick<PeerClient, 'call'>,
  timeoutMs: number,
): (target: ProbeTarget) => Promise<void> {
  return async (target) => {
    try {
      await peers.call(target, 'GET', '/v1/ping', undefined, timeoutMs);
    } catch (err) {
      const fe = toFerryError(err);
      if (fe.reason !== 'not_a_member') throw fe;
    }
  };
}

export async function probePeers(
  role: 'dispatcher' | 'worker',
  dispatcherId: string | null,
  peers: readonly PeerViewT[],
  ping: (target: ProbeTarget) => Promise<void>,
): Promise<PeerReachT[]> {
  const probe = async (p: ProbeTarget): Promise<PeerReachT> => {
    try {
      await ping(p);
      return { nodeId: p.nodeId, ok: true };
    } catch (err) {
      return { nodeId: p.nodeId, ok: false, error: toFerryError(err).message };
    }
  };
  if (role === 'dispatcher') return Promise.all(peers.map(probe));
  const dispatcher = peers.find((p) => p.nodeId === dispatcherId);
  if (!dispatcher) return [];
  const first = await probe(dispatcher);
  if (first.ok) return [first];
  const others = peers.filter((p) => p.nodeId !== dispatcherId).slice(0, 3);
  return [first, ...(await Promise.all(others.map(probe)))];
}

/**
 * The dispatcher lease (DESIGN.md section 3). The service owns one lease per gateway:
 * (dispatcher node, epoch, lease_until). The dispatcher's heartbeats renew it. It changes hands when:
 *   - there is no dispatcher, or its lease lapsed (no heartbeat for dispatcherLeaseMs);
 *   - the dispatcher is Offline, shut down, draining, or no longer Online while another node is;
 *   - early: the dispatcher has been silent for two heartbeat intervals AND every node that checked it
 *     since reports it unreachable on the node-to-node port (e.g. connection refused after kill -9).
 *     The epoch fences the old holder, so ending a lease early is always safe; it only costs a
 *     needless handover if the evidence was wrong.
 * The new holder is the best eligible node: Online, not draining, at the gateway version, most free
 * capacity, ties by registration order. Every change increments the epoch.
 */
import type { GatewayState, NodeState } from './gateway-state.ts';

export interface ElectionOptions {
  heartbeatIntervalMs: number;
  dispatcherLeaseMs: number;
}

export interface ElectionDecision {
  /** The new dispatcher, or null when no node can take the role. */
  nodeId: string | null;
  reason: string;
}

function secs(ms: number): string {
  return `${(ms / 1000).toFixed(1)} s`;
}

interface Vacancy {
  reason: string;
  /** The lease merely lapsed: the holder may win it again (under a new epoch). */
  holderMayStay: boolean;
}

/** Why the role is open, or undefined if the holder keeps it. */
function vacancy(state: GatewayState, now: number, o: ElectionOptions): Vacancy | undefined {
  const { gateway, dispatcher } = state;
  if (!gateway.dispatcher_node_id || !dispatcher) return { reason: 'no dispatcher', holderMayStay: true };
  const reason = vacancyReason(state, dispatcher, now, o);
  if (reason !== undefined) return { reason, holderMayStay: false };
  if (gateway.lease_until <= now) {
    return {
      reason: `${dispatcher.row.name} silent ${secs(now - dispatcher.row.last_seen_at)}; lease expired`,
      holderMayStay: true,
    };
  }
  return undefined;
}

/** Why the holder itself is unfit, or undefined. */
function vacancyReason(
  state: GatewayState,
  dispatcher: NodeState,
  now: number,
  o: ElectionOptions,
): string | undefined {
  const name = dispatcher.row.name;
  const silentMs = now - dispatcher.row.last_seen_at;
  if (dispatcher.row.left_at !== null) return `${name} shut down`;
  if (dispatcher.status.status === 'Offline') return `${name} is Offline (${dispatcher.status.hint})`;
  if (silentMs >= 2 * o.heartbeatIntervalMs) {
    const reports = state.nodes
      .filter((n) => n.row.id !== dispatcher.row.id && n.row.last_seen_at > dispatcher.row.last_seen_at)
      .map((n) => ({ n, r: n.reach.find((r) => r.nodeId === dispatcher.row.id) }))
      .filter((x) => x.r !== undefined);
    if (reports.length > 0 && reports.every((x) => x.r?.ok === false)) {
      const first = reports[0]?.r?.error ?? 'unreachable';
      return `${name} silent ${secs(silentMs)} and unreachable from ${reports.length} of ${reports.length} peers (${first})`;
    }
  }
  const others = state.nodes.some((n) => n.row.id !== dispatcher.row.id && isCandidate(n, state));
  if (dispatcher.draining && others) return `${name} is draining`;
  if (dispatcher.status.status !== 'Online' && !ROLE_NEUTRAL.has(dispatcher.status.reason) && others)
    return `${name} is ${dispatcher.status.status} (${dispatcher.status.hint})`;
  return undefined;
}

/** Reasons that only say something about the current dispatcher, not about the node itself. */
const DISPATCHER_REASONS: ReadonlySet<string> = new Set([
  'dispatcher_unreachable',
  'unreachable_from_dispatcher',
]);

/**
 * Limited for a reason that does not stop a node from dispatching: credentials out of sync (the
 * dispatcher is the one that brings the set up to date, pulling what another node holds; a
 * credential set straight on a worker leaves the dispatcher behind for a heartbeat or two).
 */
const ROLE_NEUTRAL: ReadonlySet<string> = new Set(['credentials_out_of_sync']);

function isCandidate(n: NodeState, state: GatewayState): boolean {
  const limitedOk = DISPATCHER_REASONS.has(n.status.reason) || ROLE_NEUTRAL.has(n.status.reason);
  const fit = n.eligible || (n.status.status === 'Limited' && limitedOk && !n.draining);
  return fit && (state.version === null || n.row.version === state.version);
}

export function decideDispatcher(
  state: GatewayState,
  activeByNode: ReadonlyMap<string, number>,
  now: number,
  o: ElectionOptions,
): ElectionDecision | undefined {
  const open = vacancy(state, now, o);
  if (open === undefined) return undefined;
  const holder = state.gateway.dispatcher_node_id;
  const free = (n: NodeState): number => n.limit - (activeByNode.get(n.row.id) ?? 0);
  const candidates = state.nodes
    .filter((n) => isCandidate(n, state) && (open.holderMayStay || n.row.id !== holder))
    .sort((a, b) => free(b) - free(a) || a.row.seq - b.row.seq);
  const best = candidates[0];
  if (!best) {
    // Nobody else can take it: keep a holder whose lease is still valid rather than leave no dispatcher.
    if (
      holder === null ||
      (!open.holderMayStay &&
        state.gateway.lease_until > now &&
        state.dispatcher?.status.status !== 'Offline' &&
        state.dispatcher?.row.left_at === null)
    ) {
      return undefined;
    }
    return { nodeId: null, reason: `${open.reason}; no eligible node` };
  }
  return { nodeId: best.row.id, reason: open.reason };
}

/**
 * Node and gateway statuses (DESIGN.md section 4, the seed's tables), derived, never stored: they are
 * a pure function of what the nodes last reported and the clock, so every replica and every reader
 * computes the same answer.
 *
 * Node, in order of precedence:
 *   Offline   no heartbeat within offlineAfterMs, or the node said it is leaving, or it registered
 *             and has not sent its first heartbeat yet
 *   Upgrading the node said so
 *   Inactive  its node-to-node encryption differs from the gateway's mode (or it cannot switch, and
 *             says why), or it reaches no other node
 *   Limited   its version differs from the gateway's; it holds an older version of a linked
 *             service's gateway-held credentials than another node up does (credentials out of
 *             sync: it gets no task that needs them until the dispatcher has brought it up to date);
 *             it cannot reach the dispatcher, or the dispatcher cannot reach it
 *   Online    otherwise
 * Gateway: Needs Registration (no node), Offline (no node Online), Online (all Online), else Limited.
 *
 * The gateway version is the version most nodes that are up run: heard from within offlineAfterMs,
 * not shut down, not upgrading, and heard from since they registered (a registration alone, say one
 * claiming 99.0.0 that never heartbeats, counts for nothing; until any node has heartbeated, the
 * nodes just registered count). A node that went away no longer decides what the others must run.
 * Likewise, a node that has not heartbeated yet does not count as a peer whose unreachability makes
 * another node Inactive (isolated).
 *
 * Encryption (protocol/encryption.ts): the gateway's mode is set in the service. A node is judged on
 * its last report only once that report was made under the current mode: a node that has not heard
 * of a new mode yet hears it in the reply to its next heartbeat, and is not Inactive meanwhile (so a
 * live change does not take every node's tasks, or the dispatcher's role, away for a heartbeat). A
 * node midway (sending TLS, taking both) fits either mode.
 */
import type { GatewayStatus, NodeStatus, StatusReason, StatusView } from '../../protocol/statuses.ts';
import type { PeerReachT } from '../../protocol/agent.ts';
import { compareVersions } from '../../protocol/version.ts';
import type { EncryptionMode } from '../../protocol/encryption.ts';

/** A node's node-to-node transport, as it last reported it. */
export interface TransportFacts {
  /** The mode the node last heard (undefined: an older node that does not say). */
  mode?: EncryptionMode | undefined;
  sendsTls: boolean;
  acceptsPlain: boolean;
  /** Why it cannot serve TLS. */
  problem?: string | undefined;
}

export interface NodeFacts {
  id: string;
  name: string;
  seq: number;
  version: string;
  tls: boolean;
  transport: TransportFacts;
  lastSeenAt: number;
  leftAt: number | null;
  upgrading: boolean;
  peerAddress: string;
  reach: PeerReachT[];
  /** Registered but no heartbeat yet: its version does not count towards the gateway version. */
  registeredOnly?: boolean;
  /** The version of each linked service's gateway-held credentials the node holds. */
  credentialVersions?: Record<string, number>;
}

export interface GatewayFacts {
  dispatcherNodeId: string | null;
  /** The gateway's node-to-node encryption mode. */
  encryption: EncryptionMode;
  /** For hints. */
  name?: string;
}

/**
 * The newest version of each linked service's gateway-held credentials among `nodes`, and which
 * node holds it (the first such node).
 */
export function latestCredentials(
  nodes: readonly Pick<NodeFacts, 'name' | 'credentialVersions'>[],
): Map<string, { version: number; holder: string }> {
  const latest = new Map<string, { version: number; holder: string }>();
  for (const n of nodes)
    for (const [ls, v] of Object.entries(n.credentialVersions ?? {}))
      if (v > (latest.get(ls)?.version ?? 0)) latest.set(ls, { version: v, holder: n.name });
  return latest;
}

export interface StatusOptions {
  offlineAfterMs: number;
}

/**
 * The version most of `nodes` run (ties: the higher version). Null when there are no nodes. Pass
 * the nodes whose version counts: `versionVoters`.
 */
export function gatewayVersion(nodes: readonly Pick<NodeFacts, 'version'>[]): string | null {
  const counts = new Map<string, number>();
  for (const n of nodes) counts.set(n.version, (counts.get(n.version) ?? 0) + 1);
  let best: string | null = null;
  let bestCount = 0;
  for (const [version, count] of counts) {
    if (count > bestCount || (count === bestCount && best !== null && compareVersions(version, best) > 0)) {
      best = version;
      bestCount = count;
    }
  }
  return best;
}

function isOffline(n: NodeFacts, now: number, o: StatusOptions): boolean {
  return n.leftAt !== null || now - n.lastSeenAt > o.offlineAfterMs;
}

/** The nodes whose version sets the gateway version (see the top of this file). */
export function versionVoters<N extends NodeFacts>(nodes: readonly N[], now: number, o: StatusOptions): N[] {
  const up = nodes.filter((n) => !isOffline(n, now, o) && !n.upgrading);
  const heard = up.filter((n) => n.registeredOnly !== true);
  return heard.length > 0 ? heard : up;
}

/**
 * Why `n`'s transport does not fit the gateway's mode, or undefined when it fits (or the node has not
 * heard of the mode yet).
 */
export function encryptionMismatch(
  n: Pick<NodeFacts, 'name' | 'transport'>,
  mode: EncryptionMode,
): string | undefined {
  const t = n.transport;
  if (t.mode !== undefined && t.mode !== mode) return undefined;
  if (mode === 'tls') {
    if (t.problem !== undefined)
      return `${n.name} cannot switch to TLS: ${t.problem}; the gateway's encryption mode is tls: fix the node's certificate files (--tls-cert, --tls-key, --tls-ca) or start it without them to use a certificate from the gateway's CA`;
    if (!t.sendsTls)
      return t.mode === undefined
        ? `${n.name} serves node-to-node traffic in plain HTTP; the gateway's encryption mode is tls: upgrade the node, or start it with --tls-cert, --tls-key and --tls-ca`
        : `${n.name} serves node-to-node traffic in plain HTTP; the gateway's encryption mode is tls: it switches once it has its certificate from the gateway's CA (within a heartbeat or two)`;
    return undefined;
  }
  if (!t.acceptsPlain)
    return `${n.name} serves node-to-node traffic in TLS only; the gateway's encryption mode is none: ${
      t.mode === undefined
        ? 'restart it without --tls-cert, --tls-key and --tls-ca, or set the mode with `ferry gateway update GW --encryption tls`'
        : 'it takes plain HTTP again at its next heartbeat'
    }`;
  return undefined;
}

/**
 * Whether every live node has made the first step towards `mode` (protocol/encryption.ts): all send
 * TLS (tls), or all take plain (none). A node that says it cannot serve TLS is left out: it is
 * Inactive, and must not hold the others at half-way.
 */
export function encryptionSettled(
  nodes: readonly NodeFacts[],
  mode: EncryptionMode,
  now: number,
  o: StatusOptions,
): boolean {
  return nodes
    .filter((n) => !isOffline(n, now, o) && n.registeredOnly !== true && !n.upgrading)
    .every((n) =>
      mode === 'tls' ? n.transport.sendsTls || n.transport.problem !== undefined : n.transport.acceptsPlain,
    );
}

function view<S extends string>(status: S, reason: StatusReason, hint: string): StatusView<S> {
  return { status, reason, hint };
}

export function computeNodeStatuses(
  nodes: readonly NodeFacts[],
  gateway: GatewayFacts,
  now: number,
  o: StatusOptions,
): Map<string, StatusView<NodeStatus>> {
  const out = new Map<string, StatusView<NodeStatus>>();
  const live = nodes.filter((n) => !isOffline(n, now, o));
  // A registration alone proves nothing: until a node has heartbeated, it does not decide whether
  // the others are isolated (unless no live node has heartbeated yet).
  const heard = live.filter((n) => n.registeredOnly !== true);
  const counted = heard.length > 0 ? heard : live;
  const version = gatewayVersion(versionVoters(nodes, now, o));
  const credentials = latestCredentials(counted);
  const byId = new Map(nodes.map((n) => [n.id, n]));
  const dispatcher = gateway.dispatcherNodeId ? byId.get(gateway.dispatcherNodeId) : undefined;

  for (const n of nodes) {
    if (n.leftAt !== null) {
      out.set(
        n.id,
        view('Offline', 'no_heartbeat', `${n.name} shut down at ${new Date(n.leftAt).toISOString()}`),
      );
      continue;
    }
    if (isOffline(n, now, o)) {
      const secs = ((now - n.lastSeenAt) / 1000).toFixed(1);
      out.set(n.id, view('Offline', 'no_heartbeat', `no heartbeat from ${n.name} for ${secs} s`));
      continue;
    }
    // A registration alone is not a running node: it gets no tasks and no role until it heartbeats.
    if (n.registeredOnly === true) {
      out.set(n.id, view('Offline', 'no_heartbeat', `${n.name} registered and has not sent a heartbeat yet`));
      continue;
    }
    if (n.upgrading) {
      out.set(n.id, view('Upgrading', 'upgrading', `${n.name} is being upgraded`));
      continue;
    }
    const mismatch = encryptionMismatch(n, gateway.encryption);
    if (mismatch !== undefined) {
      out.set(n.id, view('Inactive', 'config_mismatch', mismatch));
      continue;
    }
    const otherLive = counted.filter((p) => p.id !== n.id);
    const failed = n.reach.filter((r) => !r.ok);
    if (otherLive.length > 0 && n.reach.length > 0 && failed.length === n.reach.length) {
      const detail = failed
        .map((r) => `${byId.get(r.nodeId)?.name ?? r.nodeId}: ${r.error ?? 'unreachable'}`)
        .join('; ');
      out.set(n.id, view('Inactive', 'isolated', `${n.name} cannot connect to any other node (${detail})`));
      continue;
    }
    if (version !== null && n.version !== version) {
      out.set(
        n.id,
        view(
          'Limited',
          'version_mismatch',
          `${n.name} runs ${n.version}; the gateway version is ${version}: update it to ${version}`,
        ),
      );
      continue;
    }
    const stale = [...credentials].filter(([ls, l]) => (n.credentialVersions?.[ls] ?? 0) < l.version);
    if (stale.length > 0) {
      const detail = stale
        .map(
          ([ls, l]) =>
            `${ls}: holds version ${n.credentialVersions?.[ls] ?? 'none'}, ${l.holder} holds ${l.version}`,
        )
        .join('; ');
      out.set(
        n.id,
        view(
          'Limited',
          'credentials_out_of_sync',
          `credentials out of sync: ${n.name} ${detail}. The dispatcher pushes them within a heartbeat or two; if it stays so, run \`ferry gateway resync-credentials ${gateway.name ?? 'GATEWAY'}\``,
        ),
      );
      continue;
    }
    if (dispatcher && dispatcher.id !== n.id) {
      const toDispatcher = n.reach.find((r) => r.nodeId === dispatcher.id);
      if (toDispatcher && !toDispatcher.ok) {
        out.set(
          n.id,
          view(
            'Limited',
            'dispatcher_unreachable',
            `${n.name} cannot reach dispatcher ${dispatcher.name} at ${dispatcher.peerAddress}: ${toDispatcher.error ?? 'unreachable'}`,
          ),
        );
        continue;
      }
      const fromDispatcher = isOffline(dispatcher, now, o)
        ? undefined
        : dispatcher.reach.find((r) => r.nodeId === n.id);
      if (fromDispatcher && !fromDispatcher.ok) {
        out.set(
          n.id,
          view(
            'Limited',
            'unreachable_from_dispatcher',
            `dispatcher ${dispatcher.name} cannot reach ${n.name} at ${n.peerAddress}: ${fromDispatcher.error ?? 'unreachable'}`,
          ),
        );
        continue;
      }
    }
    out.set(n.id, view('Online', 'ok', `${n.name} is connected`));
  }
  return out;
}

/** A node Offline this long is probably gone for good: the gateway's hint says how to remove it. */
export const LONG_OFFLINE_MS = 10 * 60_000;

export function computeGatewayStatus(
  nodes: readonly (Pick<NodeFacts, 'id' | 'name'> & Partial<Pick<NodeFacts, 'lastSeenAt'>>)[],
  statuses: ReadonlyMap<string, StatusView<NodeStatus>>,
  at?: { now: number; gateway: string },
): StatusView<GatewayStatus> {
  if (nodes.length === 0)
    return view(
      'Needs Registration',
      'no_nodes',
      'no node is registered yet: run `ferry node --key KEY` on a machine',
    );
  const unhealthy = nodes.filter((n) => statuses.get(n.id)?.status !== 'Online');
  if (unhealthy.length === nodes.length) return view('Offline', 'no_node_online', 'no node is Online');
  if (unhealthy.length === 0) return view('Online', 'ok', `all ${nodes.length} nodes are Online`);
  const detail = unhealthy.map((n) => `${n.name} ${statuses.get(n.id)?.status ?? 'unknown'}`).join(', ');
  const advice: string[] = [];
  for (const n of unhealthy) {
    if (!at || n.lastSeenAt === undefined || statuses.get(n.id)?.status !== 'Offline') continue;
    const silentMs = at.now - n.lastSeenAt;
    if (silentMs >= LONG_OFFLINE_MS)
      advice.push(
        `${n.name} has been Offline for ${Math.floor(silentMs / 60_000)} min: if it is gone for good, remove it with \`ferry node delete ${at.gateway} ${n.name}\``,
      );
  }
  return view(
    'Limited',
    'some_nodes_unhealthy',
    [`not all nodes are healthy: ${detail}`, ...advice].join('; '),
  );
}

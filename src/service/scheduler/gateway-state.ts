/**
 * A gateway's nodes as one snapshot: every node's derived status, effective limit and eligibility.
 * Built from rows already read (store/queries/load-gateway-state.ts reads them), so heartbeats,
 * claims, elections and the API all judge alike.
 */
import type { GatewaysTable, NodesTable } from '../store/schema.ts';
import type { GatewayStatus, NodeStatus, StatusView } from '../../protocol/statuses.ts';
import type { MetricsT, PeerReachT } from '../../protocol/agent.ts';
import {
  computeGatewayStatus,
  computeNodeStatuses,
  encryptionSettled,
  gatewayVersion,
  latestCredentials,
  versionVoters,
  type NodeFacts,
  type StatusOptions,
} from './node-status.ts';
import { JSON_COLUMNS } from '../store/json-column.ts';
import type { NodeCredentialsT } from '../../protocol/credentials.ts';

const NO_CREDENTIALS: NodeCredentialsT = { gatewayKey: null, versions: {} };
import { isEncryptionMode, reportFromFlag, type EncryptionMode } from '../../protocol/encryption.ts';

export interface NodeState {
  row: NodesTable;
  status: StatusView<NodeStatus>;
  limit: number;
  metrics: Partial<MetricsT>;
  reach: PeerReachT[];
  /** Takes no new tasks: the operator asked, or the node is shutting down. */
  draining: boolean;
  /** May be handed tasks now. */
  eligible: boolean;
  url: string;
  /** What it reports holding of the gateway-held credentials (versions and a public key, no secret). */
  credentials: NodeCredentialsT;
}

export interface GatewayState {
  gateway: GatewaysTable;
  nodes: NodeState[];
  version: string | null;
  status: StatusView<GatewayStatus>;
  dispatcher: NodeState | undefined;
  /** The gateway's node-to-node encryption mode, and whether every live node has moved to it halfway. */
  encryption: EncryptionMode;
  encryptionSettled: boolean;
  /**
   * The newest version of each linked service's gateway-held credentials a node up holds (and
   * which node): what a node must hold to be in sync, and a task's node to run it.
   */
  latestCredentials: Map<string, { version: number; holder: string }>;
}

/** The stored mode; a value Ferry did not write reads as the safer one. */
export function gatewayEncryption(gateway: Pick<GatewaysTable, 'encryption'>): EncryptionMode {
  return isEncryptionMode(gateway.encryption) ? gateway.encryption : 'tls';
}

export function peerUrl(row: Pick<NodesTable, 'tls' | 'peer_host' | 'peer_port'>): string {
  const host = row.peer_host.includes(':') ? `[${row.peer_host}]` : row.peer_host;
  return `${row.tls ? 'https' : 'http'}://${host}:${row.peer_port}`;
}

export function toFacts(
  row: NodesTable,
  credentials: NodeCredentialsT = JSON_COLUMNS.nodeCredentials.read(row.credentials_json, row.id),
): NodeFacts {
  const report =
    row.tls_report_json === null ? undefined : JSON_COLUMNS.nodeTlsReport.read(row.tls_report_json, row.id);
  return {
    id: row.id,
    name: row.name,
    seq: row.seq,
    version: row.version,
    tls: row.tls === 1,
    transport: report
      ? {
          mode: report.mode,
          sendsTls: report.sendsTls,
          acceptsPlain: report.acceptsPlain,
          problem: report.problem,
        }
      : reportFromFlag(row.tls === 1),
    lastSeenAt: row.last_seen_at,
    leftAt: row.left_at,
    upgrading: row.upgrading === 1,
    peerAddress: `${row.peer_host}:${row.peer_port}`,
    reach: JSON_COLUMNS.nodeReach.read(row.reach_json, row.id),
    // Registration stores no metrics ('{}'); every heartbeat stores all of them.
    registeredOnly: row.metrics_json === '{}',
    credentialVersions: credentials.versions,
  };
}

export function buildGatewayState(
  gateway: GatewaysTable,
  rows: readonly NodesTable[],
  now: number,
  o: StatusOptions,
): GatewayState {
  const held = rows.map((row) => JSON_COLUMNS.nodeCredentials.read(row.credentials_json, row.id));
  const facts = rows.map((row, i) => toFacts(row, held[i] ?? NO_CREDENTIALS));
  const encryption = gatewayEncryption(gateway);
  const statuses = computeNodeStatuses(
    facts,
    { dispatcherNodeId: gateway.dispatcher_node_id, encryption, name: gateway.name },
    now,
    o,
  );
  const version = gatewayVersion(versionVoters(facts, now, o));
  const nodes = rows.map((row, i): NodeState => {
    const status = statuses.get(row.id) ?? { status: 'Offline', reason: 'no_heartbeat', hint: '' };
    const draining = row.drain_requested === 1 || row.draining === 1;
    return {
      row,
      status,
      limit: row.limit_override ?? row.limit_default,
      metrics: JSON_COLUMNS.nodeMetrics.read(row.metrics_json, row.id),
      reach: facts[i]?.reach ?? [],
      draining,
      // Behind on credentials, a node still takes tasks: only those that need them pass it by
      // (claim-tasks.ts gives them to nodes holding the newest version).
      eligible:
        (status.status === 'Online' ||
          (status.status === 'Limited' && status.reason === 'credentials_out_of_sync')) &&
        !draining,
      url: peerUrl(row),
      credentials: held[i] ?? NO_CREDENTIALS,
    };
  });
  return {
    gateway,
    nodes,
    version,
    status: computeGatewayStatus(facts, statuses, { now, gateway: gateway.name }),
    dispatcher: nodes.find((n) => n.row.id === gateway.dispatcher_node_id),
    encryption,
    encryptionSettled: encryptionSettled(facts, encryption, now, o),
    latestCredentials: latestCredentials(
      nodes
        .filter((n) => n.status.status !== 'Offline')
        .map((n) => ({ name: n.row.name, credentialVersions: n.credentials.versions })),
    ),
  };
}

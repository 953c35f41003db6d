/** How stored rows are shown to operators: the seed's monitoring columns, never a secret. */
import type { GatewayState, NodeState } from '../scheduler/gateway-state.ts';
import type {
  AttemptsTable,
  GatewaysTable,
  LinkedServicesTable,
  RunsTable,
  TasksTable,
} from '../store/schema.ts';
import type { RunDetail, RunSummary } from '../store/queries/runs.ts';
import { JSON_COLUMNS } from '../store/json-column.ts';

/** A node's copy of the gateway-held credentials, against the newest versions the nodes up hold. */
function credentialView(n: NodeState, state: GatewayStateView) {
  const mine = n.credentials;
  const behind = [...state.latestCredentials].some(([ls, l]) => (mine.versions[ls] ?? 0) < l.version);
  const status: 'in sync' | 'out of sync' | 'none' = behind
    ? 'out of sync'
    : Object.keys(mine.versions).length === 0
      ? 'none'
      : 'in sync';
  return {
    status,
    gatewayKey: mine.gatewayKey !== null && mine.gatewayKey === state.gateway.credential_key,
    versions: mine.versions,
  };
}

/** The gateway's state, with the attempts the service has handed to each node and not yet seen end. */
export type GatewayStateView = GatewayState & {
  assigned?: ReadonlyMap<string, number>;
  /** Per node: attempts handed to it, not started yet. */
  waiting?: ReadonlyMap<string, number>;
  /** The gateway's tasks queued and due, and how long the oldest has waited. */
  queue?: { tasks: number; oldestWaitSeconds: number | null };
};

export function nodeView(n: NodeState, state: GatewayStateView) {
  // The node's heartbeat says what it runs, up to a second late; the service knows at once what it
  // handed out. Either running means not drained yet.
  const running = Math.max(n.row.running, state.assigned?.get(n.row.id) ?? 0);
  const drain = n.draining ? (running > 0 ? 'draining' : 'drained') : null;
  return {
    name: n.row.name,
    status: n.status.status,
    statusReason: n.status.reason,
    statusHint: n.status.hint,
    version: n.row.version,
    role: state.gateway.dispatcher_node_id === n.row.id ? 'dispatcher' : 'worker',
    cpuPercent: n.metrics.cpuPercent ?? null,
    memoryAvailableBytes: n.metrics.memoryAvailableBytes ?? null,
    memoryTotalBytes: n.metrics.memoryTotalBytes ?? null,
    networkInBytesPerSec: n.metrics.networkInBytesPerSec ?? null,
    networkOutBytesPerSec: n.metrics.networkOutBytesPerSec ?? null,
    jobsRunning: running,
    jobsLimit: n.limit,
    limitIsDefault: n.row.limit_override === null,
    drain,
    peerAddress: `${n.row.peer_host}:${n.row.peer_port}`,
    tls: n.row.tls === 1,
    credentials: credentialView(n, state),
    ...(state.waiting ? { queue: state.waiting.get(n.row.id) ?? 0 } : {}),
    ...transportView(n),
    registeredAt: new Date(n.row.registered_at).toISOString(),
    lastSeenAt: new Date(n.row.last_seen_at).toISOString(),
  };
}

/** How the node runs its node-to-node port, and the certificate it uses, as it last reported. */
function transportView(n: NodeState) {
  const r =
    n.row.tls_report_json === null
      ? undefined
      : JSON_COLUMNS.nodeTlsReport.read(n.row.tls_report_json, n.row.id);
  const sends = r ? r.sendsTls : n.row.tls === 1;
  const plain = r ? r.acceptsPlain : n.row.tls !== 1;
  return {
    transport: sends ? (plain ? ('switching' as const) : ('tls' as const)) : ('plain' as const),
    certificate: r?.certificate
      ? { source: r.certificate.source, expiresAt: new Date(r.certificate.expiresAt).toISOString() }
      : null,
  };
}

export function gatewaySummary(state: GatewayStateView) {
  const gw = state.gateway;
  return {
    name: gw.name,
    status: state.status.status,
    statusReason: state.status.reason,
    statusHint: state.status.hint,
    version: state.version,
    nodes: state.nodes.length,
    maxNodes: gw.max_nodes,
    dispatcher: state.dispatcher?.row.name ?? null,
    epoch: gw.epoch,
    dispatcherSince: gw.dispatcher_changed_at ? new Date(gw.dispatcher_changed_at).toISOString() : null,
    dispatcherReason: gw.dispatcher_reason,
    encryption: state.encryption,
    ...(state.queue ? { queue: state.queue } : {}),
    createdAt: new Date(gw.created_at).toISOString(),
  };
}

export function gatewayDetail(state: GatewayStateView) {
  return { ...gatewaySummary(state), nodeList: state.nodes.map((n) => nodeView(n, state)) };
}

export function keysView(gw: GatewaysTable) {
  return { gateway: gw.name, key1: gw.key1, key2: gw.key2 };
}

export function linkedServiceView(
  row: LinkedServicesTable,
  gatewayName: string,
  secretNames: readonly string[],
) {
  return {
    name: row.name,
    type: row.type,
    gateway: gatewayName,
    properties: JSON_COLUMNS.linkedServiceProperties.read(row.properties_json, row.name),
    /** Which secret properties are set; their values never leave the service. */
    secrets: row.secret_sealed === null ? [] : secretNames,
    credentials: row.credentials === 'gateway' ? ('gateway' as const) : ('service' as const),
    credentialVersion: row.credential_version,
    updatedAt: new Date(row.updated_at).toISOString(),
  };
}

const iso = (ms: number | null): string | null => (ms === null ? null : new Date(ms).toISOString());

export function runView(run: RunsTable) {
  return {
    id: run.id,
    pipeline: run.pipeline_name,
    pipelineVersion: run.pipeline_version,
    status: run.status,
    error: run.error,
    createdAt: iso(run.created_at),
    startedAt: iso(run.started_at),
    finishedAt: iso(run.finished_at),
  };
}

function attemptView(a: AttemptsTable) {
  return {
    id: a.id,
    node: a.node_name,
    epoch: a.epoch,
    status: a.status,
    rows: a.rows,
    bytes: a.bytes,
    error: a.error,
    claimedAt: iso(a.created_at),
    startedAt: iso(a.started_at),
    finishedAt: iso(a.finished_at),
  };
}

function taskView(t: TasksTable, mine: AttemptsTable[], activity: string) {
  const last = mine.at(-1);
  const result = t.result_json ? JSON_COLUMNS.taskResult.read(t.result_json, t.id) : null;
  return {
    id: t.id,
    activity,
    kind: t.kind,
    index: t.idx,
    status: t.status,
    node: last?.node_name ?? null,
    attempts: t.attempts,
    rows: t.rows,
    bytes: t.bytes,
    durationMs: t.started_at !== null && t.finished_at !== null ? t.finished_at - t.started_at : null,
    error: t.error,
    outputs: result?.kind === 'copy' ? result.outputs : [],
    partitions: result?.kind === 'plan' ? result.partitions.length : null,
    attemptList: mine.map(attemptView),
  };
}

export function runSummaryView(d: RunSummary) {
  return {
    ...runView(d.run),
    activities: d.activities.map((a) => ({
      name: a.name,
      status: a.status,
      error: a.error,
      startedAt: iso(a.started_at),
      finishedAt: iso(a.finished_at),
    })),
    progress: d.progress,
  };
}

export function runDetailView(d: RunDetail) {
  const names = new Map(d.activities.map((a) => [a.id, a.name]));
  const byTask = new Map<string, AttemptsTable[]>();
  for (const a of d.attempts) {
    const list = byTask.get(a.task_id);
    if (list) list.push(a);
    else byTask.set(a.task_id, [a]);
  }
  return {
    ...runSummaryView(d),
    tasks: d.tasks.map((t) => taskView(t, byTask.get(t.id) ?? [], names.get(t.activity_run_id) ?? '')),
  };
}

/** The API's bodies as the portal reads them (src/service/api/schemas.ts is the source of truth). */

export interface Gateway {
  name: string;
  status: 'Needs Registration' | 'Online' | 'Offline' | 'Limited';
  statusReason: string;
  statusHint: string;
  version: string | null;
  nodes: number;
  maxNodes: number | null;
  dispatcher: string | null;
  epoch: number;
  dispatcherSince: string | null;
  dispatcherReason: string | null;
  /** Tasks queued and due (on a gateway's own page). */
  queue?: { tasks: number; oldestWaitSeconds: number | null };
  createdAt: string;
}

export interface NodeInfo {
  name: string;
  status: 'Online' | 'Offline' | 'Upgrading' | 'Limited' | 'Inactive';
  statusReason: string;
  statusHint: string;
  version: string;
  role: 'dispatcher' | 'worker';
  cpuPercent: number | null;
  memoryAvailableBytes: number | null;
  memoryTotalBytes: number | null;
  networkInBytesPerSec: number | null;
  networkOutBytesPerSec: number | null;
  jobsRunning: number;
  jobsLimit: number;
  limitIsDefault: boolean;
  drain: 'draining' | 'drained' | null;
  peerAddress: string;
  tls: boolean;
  registeredAt: string;
  lastSeenAt: string;
  /** The node's copy of the gateway-held credentials (issue 18); "-" on a service without it. */
  credentials?: { status: 'in sync' | 'out of sync' | 'none'; gatewayKey: boolean } | null;
  /** Attempts handed to the node that it has not started yet. */
  queue?: number | null;
}

export interface GatewayNodes {
  gateway: Gateway;
  nodes: NodeInfo[];
}

export interface GatewayEvent {
  at: string;
  kind: string;
  message: string;
}

export interface Keys {
  gateway: string;
  key1: string;
  key2: string;
}

export interface MetricsPoint {
  at: string;
  status: string;
  cpuPercent: number | null;
  memoryAvailableBytes: number | null;
  memoryTotalBytes: number | null;
  networkInBytesPerSec: number | null;
  networkOutBytesPerSec: number | null;
  running: number | null;
  limit: number | null;
}

export interface NodeMetrics {
  node: string;
  window: string;
  resolutionSeconds: number;
  points: MetricsPoint[];
}

export interface Advice {
  kind: 'scale_out' | 'scale_up' | 'nothing';
  title: string;
  detail: string;
  figures: { name: string; value: number | string; unit: string }[];
}

export interface GatewayAdvice {
  gateway: string;
  window: string;
  advice: Advice[];
}

export interface Pipeline {
  name: string;
  version: number;
  updatedAt: string;
  spec: { name: string; activities: { name: string }[] };
}

export interface Run {
  id: string;
  pipeline: string;
  pipelineVersion: number;
  status: string;
  error: string | null;
  createdAt: string;
  startedAt: string | null;
  finishedAt: string | null;
}

export interface Attempt {
  id: string;
  node: string;
  epoch: number;
  status: string;
  rows: number;
  bytes: number;
  error: string | null;
  claimedAt: string;
  startedAt: string | null;
  finishedAt: string | null;
}

export interface Task {
  id: string;
  activity: string;
  kind: string;
  index: number;
  status: string;
  node: string | null;
  attempts: number;
  rows: number;
  bytes: number;
  durationMs: number | null;
  error: string | null;
  outputs: { name: string; bytes: number; rows?: number; sha256: string }[];
  partitions: number | null;
  attemptList: Attempt[];
}

export interface RunDetail extends Run {
  activities: {
    name: string;
    status: string;
    error: string | null;
    startedAt: string | null;
    finishedAt: string | null;
  }[];
  progress: {
    tasksTotal: number;
    tasksDone: number;
    tasksFailed: number;
    tasksRunning: number;
    planned: boolean;
    rows: number;
    bytes: number;
  };
  tasks: Task[];
}

/**
 * The node's Prometheus metrics (GET /metrics on the node-to-node port). The node's own series carry
 * the labels gateway and node and the same names as the service's per-node series
 * (src/service/gateway-metrics.ts), so a dashboard reads either: `ferry_node_status{status}` and
 * `ferry_node_role{role}` (1 for the current one, as the service last answered), CPU, memory and
 * network as sent in the last heartbeat, jobs running (live) and the concurrent jobs limit. Until
 * the first heartbeat is answered the node has no labels yet, and these series are absent.
 */
import { Counter, Gauge, Registry } from 'prom-client';
import { collectProcessMetrics } from '../common/process-metrics.ts';
import type { MetricsT } from '../protocol/agent.ts';

const NODE_STATUSES = ['Online', 'Offline', 'Upgrading', 'Limited', 'Inactive'] as const;
const ROLES = ['dispatcher', 'worker'] as const;

type Labels = { gateway: string; node: string };

export interface HeartbeatFigures {
  gateway: string;
  node: string;
  status: string;
  role: string;
  limit: number;
  running: number;
  sample: MetricsT;
}

export interface NodeMetrics {
  registry: Registry;
  dispatched: Counter;
  heartbeatFailures: Counter;
  /** After each answered heartbeat: what was sent and what the service said. */
  observeHeartbeat(f: HeartbeatFigures): void;
  /** Whenever the worker's running tasks change. */
  setRunning(running: number): void;
}

export function createNodeMetrics(): NodeMetrics {
  const registry = new Registry();
  collectProcessMetrics(registry, 'ferry_node_');
  const labelNames = ['gateway', 'node'] as const;
  const gauge = (name: string, help: string) =>
    new Gauge({ name, help, labelNames: [...labelNames], registers: [registry] });
  const status = new Gauge({
    name: 'ferry_node_status',
    help: "1 for the node's current status (as the service last answered), 0 for the others",
    labelNames: ['gateway', 'node', 'status'],
    registers: [registry],
  });
  const role = new Gauge({
    name: 'ferry_node_role',
    help: "1 for the node's current role (dispatcher or worker), 0 for the other",
    labelNames: ['gateway', 'node', 'role'],
    registers: [registry],
  });
  const cpu = gauge(
    'ferry_node_cpu_usage_ratio',
    'CPU in use on the node machine (0-1), at the last heartbeat',
  );
  const memAvailable = gauge('ferry_node_memory_available_bytes', 'Memory available on the node machine');
  const memTotal = gauge('ferry_node_memory_total_bytes', "The node machine's memory");
  const netIn = gauge(
    'ferry_node_network_receive_bytes_per_second',
    'Network bytes received per second by the node machine',
  );
  const netOut = gauge(
    'ferry_node_network_transmit_bytes_per_second',
    'Network bytes sent per second by the node machine',
  );
  const running = gauge('ferry_node_jobs_running', 'Tasks running on this node');
  const limit = gauge('ferry_node_jobs_limit', "This node's concurrent jobs limit");
  let labels: Labels | undefined;
  let runningNow = 0;

  return {
    registry,
    dispatched: new Counter({
      name: 'ferry_node_dispatched_total',
      help: 'Attempts this node handed to workers as dispatcher',
      registers: [registry],
    }),
    heartbeatFailures: new Counter({
      name: 'ferry_node_heartbeat_failures_total',
      help: 'Heartbeats that did not reach the service',
      registers: [registry],
    }),
    observeHeartbeat(f) {
      labels = { gateway: f.gateway, node: f.node };
      runningNow = f.running;
      for (const s of NODE_STATUSES) status.set({ ...labels, status: s }, f.status === s ? 1 : 0);
      for (const r of ROLES) role.set({ ...labels, role: r }, f.role === r ? 1 : 0);
      cpu.set(labels, f.sample.cpuPercent / 100);
      memAvailable.set(labels, f.sample.memoryAvailableBytes);
      memTotal.set(labels, f.sample.memoryTotalBytes);
      netIn.set(labels, f.sample.networkInBytesPerSec);
      netOut.set(labels, f.sample.networkOutBytesPerSec);
      limit.set(labels, f.limit);
      running.set(labels, runningNow);
    },
    setRunning(n) {
      runningNow = n;
      if (labels) running.set(labels, n);
    },
  };
}

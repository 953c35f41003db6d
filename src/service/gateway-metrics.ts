/**
 * The gateways' and nodes' state as Prometheus series, read from the store at each scrape (so every
 * replica reports the same, and a restart loses nothing):
 *
 * - per node (labels gateway, node): `ferry_node_status{status}` and `ferry_node_role{role}` (1 for
 *   the current one, 0 for the others), `ferry_node_cpu_usage_ratio`, `ferry_node_memory_available_bytes`,
 *   `ferry_node_memory_total_bytes`, `ferry_node_network_receive_bytes_per_second`,
 *   `ferry_node_network_transmit_bytes_per_second`, `ferry_node_jobs_running`, `ferry_node_jobs_limit`,
 *   `ferry_node_last_heartbeat_timestamp_seconds`. A node that is not reporting (Offline) has no
 *   CPU, memory, network or running series: its last figures would read as live.
 * - per gateway (label gateway): `ferry_gateway_status{status}`, `ferry_gateway_queued_tasks` (queued
 *   and due), `ferry_gateway_oldest_queued_task_age_seconds`, and the counters
 *   `ferry_dispatcher_changes_total` and `ferry_attempts_lost_total`, counted from the gateway's events.
 *
 * A node process serves the same node series on its own /metrics (src/node/node-metrics.ts).
 */
import { Counter, Gauge, type Registry } from 'prom-client';
import type { Kysely } from 'kysely';
import type { Schema } from './store/schema.ts';
import type { StatusOptions } from './scheduler/node-status.ts';
import { buildGatewayState, type GatewayState } from './scheduler/gateway-state.ts';
import { findGateway, listGateways } from './store/queries/gateways.ts';
import { listGatewayNodes } from './store/queries/nodes.ts';
import { queueFigures } from './store/queries/metrics-history.ts';
import { countGatewayEvents } from './store/queries/event-counts.ts';

const NODE_STATUSES = ['Online', 'Offline', 'Upgrading', 'Limited', 'Inactive'] as const;
const GATEWAY_STATUSES = ['Needs Registration', 'Online', 'Offline', 'Limited'] as const;
const ROLES = ['dispatcher', 'worker'] as const;

interface Snapshot {
  gateways: GatewayState[];
  queues: Awaited<ReturnType<typeof queueFigures>>;
  events: Awaited<ReturnType<typeof countGatewayEvents>>;
  now: number;
}

export interface StoreSource {
  store: { db: Kysely<Schema> };
  timings: StatusOptions;
  now(): number;
}

/** How long one reading of the store serves the series of a scrape (all are collected at once). */
const SNAPSHOT_MS = 1000;

export function registerGatewayMetrics(
  registry: Registry,
  source: StoreSource,
  gatewayNames: Map<string, string>,
): void {
  let cached: { at: number; snapshot: Promise<Snapshot> } | undefined;
  const snapshot = (): Promise<Snapshot> => {
    const now = source.now();
    if (cached && now - cached.at < SNAPSHOT_MS) return cached.snapshot;
    const read = async (): Promise<Snapshot> => {
      const db = source.store.db;
      const gateways: GatewayState[] = [];
      for (const gw of await listGateways(db)) {
        gatewayNames.set(gw.id, gw.name);
        gateways.push(buildGatewayState(gw, await listGatewayNodes(db, gw.id), now, source.timings));
      }
      return {
        gateways,
        queues: await queueFigures(db, now),
        events: await countGatewayEvents(db, ['dispatcher_changed', 'attempt_lost']),
        now,
      };
    };
    const mine = { at: now, snapshot: read() };
    cached = mine;
    // A failed reading is not kept: the next scrape reads again.
    mine.snapshot.catch(() => {
      if (cached === mine) cached = undefined;
    });
    return mine.snapshot;
  };

  const nodeGauge = (
    name: string,
    help: string,
    value: (n: GatewayState['nodes'][number]) => number | undefined,
    liveOnly: boolean,
  ) =>
    new Gauge({
      name,
      help,
      labelNames: ['gateway', 'node'],
      registers: [registry],
      async collect() {
        this.reset();
        for (const g of (await snapshot()).gateways)
          for (const n of g.nodes) {
            if (liveOnly && n.status.status === 'Offline') continue;
            const v = value(n);
            if (v !== undefined) this.set({ gateway: g.gateway.name, node: n.row.name }, v);
          }
      },
    });

  new Gauge({
    name: 'ferry_node_status',
    help: "1 for the node's current status (Online, Offline, Upgrading, Limited, Inactive), 0 for the others",
    labelNames: ['gateway', 'node', 'status'],
    registers: [registry],
    async collect() {
      this.reset();
      for (const g of (await snapshot()).gateways)
        for (const n of g.nodes)
          for (const s of NODE_STATUSES)
            this.set({ gateway: g.gateway.name, node: n.row.name, status: s }, n.status.status === s ? 1 : 0);
    },
  });
  new Gauge({
    name: 'ferry_node_role',
    help: "1 for the node's current role (dispatcher or worker), 0 for the other",
    labelNames: ['gateway', 'node', 'role'],
    registers: [registry],
    async collect() {
      this.reset();
      for (const g of (await snapshot()).gateways)
        for (const n of g.nodes) {
          const role = g.gateway.dispatcher_node_id === n.row.id ? 'dispatcher' : 'worker';
          for (const r of ROLES)
            this.set({ gateway: g.gateway.name, node: n.row.name, role: r }, role === r ? 1 : 0);
        }
    },
  });
  const scaled = (v: number | undefined, by: number): number | undefined =>
    v === undefined ? undefined : v / by;
  nodeGauge(
    'ferry_node_cpu_usage_ratio',
    'CPU in use on the node (0-1), at its last heartbeat',
    (n) => scaled(n.metrics.cpuPercent, 100),
    true,
  );
  nodeGauge(
    'ferry_node_memory_available_bytes',
    'Memory available on the node, at its last heartbeat',
    (n) => n.metrics.memoryAvailableBytes,
    true,
  );
  nodeGauge(
    'ferry_node_memory_total_bytes',
    "The node machine's memory",
    (n) => n.metrics.memoryTotalBytes,
    true,
  );
  nodeGauge(
    'ferry_node_network_receive_bytes_per_second',
    'Network bytes received per second by the node machine, at its last heartbeat',
    (n) => n.metrics.networkInBytesPerSec,
    true,
  );
  nodeGauge(
    'ferry_node_network_transmit_bytes_per_second',
    'Network bytes sent per second by the node machine, at its last heartbeat',
    (n) => n.metrics.networkOutBytesPerSec,
    true,
  );
  nodeGauge(
    'ferry_node_jobs_running',
    'Tasks running on the node, at its last heartbeat',
    (n) => n.row.running,
    true,
  );
  nodeGauge('ferry_node_jobs_limit', "The node's concurrent jobs limit", (n) => n.limit, false);
  nodeGauge(
    'ferry_node_last_heartbeat_timestamp_seconds',
    "When the node's last heartbeat came",
    (n) => n.row.last_seen_at / 1000,
    false,
  );

  new Gauge({
    name: 'ferry_gateway_status',
    help: "1 for the gateway's current status (Needs Registration, Online, Offline, Limited), 0 for the others",
    labelNames: ['gateway', 'status'],
    registers: [registry],
    async collect() {
      this.reset();
      for (const g of (await snapshot()).gateways)
        for (const s of GATEWAY_STATUSES)
          this.set({ gateway: g.gateway.name, status: s }, g.status.status === s ? 1 : 0);
    },
  });
  new Gauge({
    name: 'ferry_gateway_queued_tasks',
    help: "Tasks in the gateway's queue, due to run (not waiting out a retry backoff)",
    labelNames: ['gateway'],
    registers: [registry],
    async collect() {
      this.reset();
      const s = await snapshot();
      for (const g of s.gateways)
        this.set({ gateway: g.gateway.name }, s.queues.get(g.gateway.id)?.queued ?? 0);
    },
  });
  new Gauge({
    name: 'ferry_gateway_oldest_queued_task_age_seconds',
    help: "How long the oldest task in the gateway's queue has waited (0 with none)",
    labelNames: ['gateway'],
    registers: [registry],
    async collect() {
      this.reset();
      const s = await snapshot();
      for (const g of s.gateways) {
        const q = s.queues.get(g.gateway.id);
        this.set({ gateway: g.gateway.name }, q ? Math.max(0, s.now - q.oldestQueuedAt) / 1000 : 0);
      }
    },
  });
  const eventCounter = (name: string, help: string, kind: string) =>
    new Counter({
      name,
      help,
      labelNames: ['gateway'],
      registers: [registry],
      async collect() {
        this.reset();
        const s = await snapshot();
        const names = new Map(s.gateways.map((g) => [g.gateway.id, g.gateway.name]));
        for (const name of names.values()) this.inc({ gateway: name }, 0);
        for (const e of s.events) {
          const name = names.get(e.gatewayId);
          if (e.kind === kind && name !== undefined) this.inc({ gateway: name }, e.count);
        }
      },
    });
  eventCounter(
    'ferry_dispatcher_changes_total',
    "Changes of the gateway's dispatcher (each an event with its reason)",
    'dispatcher_changed',
  );
  eventCounter(
    'ferry_attempts_lost_total',
    'Task attempts lost (their node went Offline, or their lease lapsed with no progress)',
    'attempt_lost',
  );
}

/** A gateway's name for labels: known from the last scrape, else read once. */
export async function gatewayLabel(
  db: Kysely<Schema>,
  gatewayNames: Map<string, string>,
  gatewayId: string,
): Promise<string> {
  const known = gatewayNames.get(gatewayId);
  if (known !== undefined) return known;
  const name = (await findGateway(db, gatewayId))?.name ?? gatewayId;
  gatewayNames.set(gatewayId, name);
  return name;
}

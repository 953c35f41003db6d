/**
 * Metrics history (migration 008): samples written by the service's sampler, read by the metrics
 * and advice routes, averaged into coarser points and pruned past their retention
 * (src/service/metrics-history.ts decides when). A sample that already exists for its node (or
 * gateway) and bucket is left as it is: two replicas sampling the same bucket write one row.
 */
import type { Kysely } from 'kysely';
import type { GatewayMetricsHistoryTable, NodeMetricsHistoryTable, Schema } from '../schema.ts';
import {
  averageNodePoints,
  averageQueuePoints,
  type NodePoint,
  type QueuePoint,
} from '../../history-points.ts';

export async function insertNodeSamples(
  db: Kysely<Schema>,
  rows: readonly NodeMetricsHistoryTable[],
): Promise<void> {
  if (rows.length === 0) return;
  await db
    .insertInto('node_metrics_history')
    .values([...rows])
    .onConflict((oc) => oc.columns(['node_id', 'resolution_s', 'at']).doNothing())
    .execute();
}

export async function insertQueueSamples(
  db: Kysely<Schema>,
  rows: readonly GatewayMetricsHistoryTable[],
): Promise<void> {
  if (rows.length === 0) return;
  await db
    .insertInto('gateway_metrics_history')
    .values([...rows])
    .onConflict((oc) => oc.columns(['gateway_id', 'resolution_s', 'at']).doNothing())
    .execute();
}

/** One gateway's queue now: tasks queued and due, and since when the oldest waits (null: none). */
export async function gatewayQueue(
  db: Kysely<Schema>,
  gatewayId: string,
  now: number,
): Promise<{ tasks: number; oldestQueuedAt: number | null }> {
  const r = await db
    .selectFrom('tasks')
    .select((eb) => [
      eb.fn.countAll<number | string>().as('queued'),
      eb.fn.min<number | string>('queued_at').as('oldest'),
    ])
    .where('gateway_id', '=', gatewayId)
    .where('status', '=', 'queued')
    .where('not_before', '<=', now)
    .executeTakeFirst();
  const tasks = Number(r?.queued ?? 0);
  return { tasks, oldestQueuedAt: tasks > 0 && r?.oldest != null ? Number(r.oldest) : null };
}

/** Per gateway with any: how many tasks are queued and due, and since when the oldest waits. */
export async function queueFigures(
  db: Kysely<Schema>,
  now: number,
): Promise<Map<string, { queued: number; oldestQueuedAt: number }>> {
  const rows = await db
    .selectFrom('tasks')
    .select((eb) => [
      'gateway_id',
      eb.fn.countAll<number | string>().as('queued'),
      eb.fn.min<number | string>('queued_at').as('oldest'),
    ])
    .where('status', '=', 'queued')
    .where('not_before', '<=', now)
    .groupBy('gateway_id')
    .execute();
  return new Map(
    rows.map((r) => [r.gateway_id, { queued: Number(r.queued), oldestQueuedAt: Number(r.oldest) }]),
  );
}

export function toNodePoint(r: NodeMetricsHistoryTable): NodePoint {
  return {
    at: Number(r.at),
    samples: r.samples,
    status: r.status,
    cpuPercent: r.cpu_percent,
    memoryAvailableBytes: r.memory_available_bytes,
    memoryTotalBytes: r.memory_total_bytes,
    networkInBytesPerSec: r.network_in_bps,
    networkOutBytesPerSec: r.network_out_bps,
    running: r.jobs_running,
    limit: r.jobs_limit,
  };
}

function toQueuePoint(r: GatewayMetricsHistoryTable): QueuePoint {
  return { at: Number(r.at), samples: r.samples, queued: r.queued, oldestWaitMs: r.oldest_wait_ms };
}

/** One node's points since `since` (ms), every resolution, oldest first. */
export async function listNodeHistory(
  db: Kysely<Schema>,
  nodeId: string,
  since: number,
): Promise<NodePoint[]> {
  const rows = await db
    .selectFrom('node_metrics_history')
    .selectAll()
    .where('node_id', '=', nodeId)
    .where('at', '>=', since)
    .orderBy('at')
    .execute();
  return rows.map(toNodePoint);
}

/** Every node's points of a gateway since `since`, by node name, oldest first. */
export async function listGatewayNodeHistory(
  db: Kysely<Schema>,
  gatewayId: string,
  since: number,
): Promise<Map<string, { name: string; points: NodePoint[] }>> {
  const rows = await db
    .selectFrom('node_metrics_history')
    .selectAll()
    .where('gateway_id', '=', gatewayId)
    .where('at', '>=', since)
    .orderBy('at')
    .execute();
  const out = new Map<string, { name: string; points: NodePoint[] }>();
  for (const r of rows) {
    let n = out.get(r.node_id);
    if (!n) out.set(r.node_id, (n = { name: r.node_name, points: [] }));
    n.points.push(toNodePoint(r));
  }
  return out;
}

export async function listQueueHistory(
  db: Kysely<Schema>,
  gatewayId: string,
  since: number,
): Promise<QueuePoint[]> {
  const rows = await db
    .selectFrom('gateway_metrics_history')
    .selectAll()
    .where('gateway_id', '=', gatewayId)
    .where('at', '>=', since)
    .orderBy('at')
    .execute();
  return rows.map(toQueuePoint);
}

export interface Compaction {
  /** The resolution of the samples to average. */
  fromResolutionS: number;
  /** ... into points of this resolution. */
  toResolutionS: number;
  /** Samples before this (ms; a multiple of toResolutionS, so every bucket is whole) are averaged and deleted. */
  before: number;
  /** Averaged points before this (ms) are deleted. */
  pruneBefore: number;
}

/**
 * Averages the samples past their retention into coarser points and deletes them, and deletes the
 * coarser points past theirs, in one transaction. Returns how many rows went in all.
 */
export async function compactHistory(db: Kysely<Schema>, c: Compaction): Promise<number> {
  const bucketMs = c.toResolutionS * 1000;
  return db.transaction().execute(async (tx) => {
    let gone = 0;
    const nodeRows = await tx
      .selectFrom('node_metrics_history')
      .selectAll()
      .where('resolution_s', '=', c.fromResolutionS)
      .where('at', '<', c.before)
      .execute();
    const byNode = new Map<string, NodeMetricsHistoryTable[]>();
    for (const r of nodeRows) byNode.set(r.node_id, [...(byNode.get(r.node_id) ?? []), r]);
    const nodeAverages: NodeMetricsHistoryTable[] = [];
    for (const rows of byNode.values()) {
      const first = rows[0];
      if (!first) continue;
      for (const p of averageNodePoints(rows.map(toNodePoint), bucketMs)) {
        if (p.at < c.pruneBefore) continue;
        nodeAverages.push({
          node_id: first.node_id,
          resolution_s: c.toResolutionS,
          at: p.at,
          gateway_id: first.gateway_id,
          node_name: rows.at(-1)?.node_name ?? first.node_name,
          samples: p.samples,
          status: p.status,
          cpu_percent: p.cpuPercent,
          memory_available_bytes: p.memoryAvailableBytes,
          memory_total_bytes: p.memoryTotalBytes,
          network_in_bps: p.networkInBytesPerSec,
          network_out_bps: p.networkOutBytesPerSec,
          jobs_running: p.running,
          jobs_limit: p.limit,
        });
      }
    }
    for (let i = 0; i < nodeAverages.length; i += 500)
      await insertNodeSamples(tx, nodeAverages.slice(i, i + 500));

    const queueRows = await tx
      .selectFrom('gateway_metrics_history')
      .selectAll()
      .where('resolution_s', '=', c.fromResolutionS)
      .where('at', '<', c.before)
      .execute();
    const byGateway = new Map<string, GatewayMetricsHistoryTable[]>();
    for (const r of queueRows) byGateway.set(r.gateway_id, [...(byGateway.get(r.gateway_id) ?? []), r]);
    const queueAverages: GatewayMetricsHistoryTable[] = [];
    for (const [gatewayId, rows] of byGateway) {
      for (const p of averageQueuePoints(rows.map(toQueuePoint), bucketMs)) {
        if (p.at < c.pruneBefore) continue;
        queueAverages.push({
          gateway_id: gatewayId,
          resolution_s: c.toResolutionS,
          at: p.at,
          samples: p.samples,
          queued: p.queued,
          oldest_wait_ms: p.oldestWaitMs,
        });
      }
    }
    for (let i = 0; i < queueAverages.length; i += 500)
      await insertQueueSamples(tx, queueAverages.slice(i, i + 500));

    for (const table of ['node_metrics_history', 'gateway_metrics_history'] as const) {
      const raw = await tx
        .deleteFrom(table)
        .where('resolution_s', '=', c.fromResolutionS)
        .where('at', '<', c.before)
        .executeTakeFirst();
      const old = await tx
        .deleteFrom(table)
        .where('resolution_s', '=', c.toResolutionS)
        .where('at', '<', c.pruneBefore)
        .executeTakeFirst();
      gone += Number(raw.numDeletedRows) + Number(old.numDeletedRows);
    }
    return gone;
  });
}

/**
 * The metrics history's writer: every 10 s, one sample per node (its last heartbeat's figures, its
 * status, jobs running and limit) and one per gateway (its queue); past `metricsRetentionHours`
 * the samples are averaged into 5-minute points, kept `metricsAverageRetentionDays`, then deleted.
 * So the store holds at most (retention / 10 s) + (average retention / 5 min) points per node,
 * whatever the uptime.
 *
 * Why sampled by the service's sweep and not written by each heartbeat: a heartbeat stays one
 * update (nodes send one every second), a node that stops reporting still gets points (Offline,
 * with no figures, rather than a silent gap or its last figures carried on), and with several
 * replicas only the one holding the sweep lock samples; the bucket is part of the row's key, so a
 * sample is written at most once per node and 10 s even when two replicas try.
 */
import type { Kysely } from 'kysely';
import type { Schema, NodeMetricsHistoryTable, GatewayMetricsHistoryTable } from './store/schema.ts';
import type { Logger } from '../common/logger.ts';
import type { SchedulerTimings } from './scheduler/timings.ts';
import { buildGatewayState } from './scheduler/gateway-state.ts';
import { listGateways } from './store/queries/gateways.ts';
import { listGatewayNodes } from './store/queries/nodes.ts';
import {
  compactHistory,
  insertNodeSamples,
  insertQueueSamples,
  queueFigures,
} from './store/queries/metrics-history.ts';

/** Samples are this far apart. */
export const SAMPLE_RESOLUTION_S = 10;
/** Samples past their retention are averaged into points this far apart. */
export const AVERAGE_RESOLUTION_S = 300;
/** Compaction (averaging and pruning) runs at most this often per process. */
const COMPACT_EVERY_MS = 60_000;

export interface HistoryRetention {
  /** Samples (10 s) are kept this long (ms). */
  sampleRetentionMs: number;
  /** 5-minute averages are kept this long (ms). */
  averageRetentionMs: number;
}

export class MetricsHistory {
  readonly #db: Kysely<Schema>;
  readonly #timings: SchedulerTimings;
  readonly #retention: HistoryRetention;
  readonly #log: Logger;
  #sampledBucket = Number.NEGATIVE_INFINITY;
  #compactedAt = Number.NEGATIVE_INFINITY;

  constructor(db: Kysely<Schema>, timings: SchedulerTimings, retention: HistoryRetention, log: Logger) {
    this.#db = db;
    this.#timings = timings;
    this.#retention = retention;
    this.#log = log;
  }

  /** The sweep's call: samples once per 10 s bucket, compacts once a minute. */
  async tick(now: number): Promise<void> {
    await this.sample(now);
    await this.compact(now);
  }

  /**
   * Writes this bucket's samples, unless this process already did. Returns true if it sampled. Not
   * during the grace after a service restart or a store outage (SchedulerTimings.electionsEnabled):
   * every node looks silent then, and would be recorded Offline while it was not.
   */
  async sample(now: number): Promise<boolean> {
    const bucketMs = SAMPLE_RESOLUTION_S * 1000;
    const at = Math.floor(now / bucketMs) * bucketMs;
    if (at === this.#sampledBucket || !this.#timings.electionsEnabled(now)) return false;
    this.#sampledBucket = at;
    const queues = await queueFigures(this.#db, now);
    const nodes: NodeMetricsHistoryTable[] = [];
    const gateways: GatewayMetricsHistoryTable[] = [];
    for (const gw of await listGateways(this.#db)) {
      const state = buildGatewayState(gw, await listGatewayNodes(this.#db, gw.id), now, this.#timings);
      for (const n of state.nodes) {
        // A node that is not reporting has no figures: its last ones would read as live.
        const live = n.status.status !== 'Offline';
        const figure = (v: number | undefined): number | null => (live ? (v ?? null) : null);
        nodes.push({
          node_id: n.row.id,
          resolution_s: SAMPLE_RESOLUTION_S,
          at,
          gateway_id: gw.id,
          node_name: n.row.name,
          samples: 1,
          status: n.status.status,
          cpu_percent: figure(n.metrics.cpuPercent),
          memory_available_bytes: figure(n.metrics.memoryAvailableBytes),
          memory_total_bytes: figure(n.metrics.memoryTotalBytes),
          network_in_bps: figure(n.metrics.networkInBytesPerSec),
          network_out_bps: figure(n.metrics.networkOutBytesPerSec),
          jobs_running: live ? n.row.running : null,
          jobs_limit: n.limit,
        });
      }
      const q = queues.get(gw.id);
      gateways.push({
        gateway_id: gw.id,
        resolution_s: SAMPLE_RESOLUTION_S,
        at,
        samples: 1,
        queued: q?.queued ?? 0,
        oldest_wait_ms: q ? Math.max(0, now - q.oldestQueuedAt) : 0,
      });
    }
    await insertNodeSamples(this.#db, nodes);
    await insertQueueSamples(this.#db, gateways);
    return true;
  }

  /** Averages and prunes what is past its retention, unless this process did so within the minute. */
  async compact(now: number): Promise<void> {
    if (now - this.#compactedAt < COMPACT_EVERY_MS) return;
    this.#compactedAt = now;
    const bucketMs = AVERAGE_RESOLUTION_S * 1000;
    const gone = await compactHistory(this.#db, {
      fromResolutionS: SAMPLE_RESOLUTION_S,
      toResolutionS: AVERAGE_RESOLUTION_S,
      before: Math.floor((now - this.#retention.sampleRetentionMs) / bucketMs) * bucketMs,
      pruneBefore: now - this.#retention.averageRetentionMs,
    });
    if (gone > 0) this.#log.debug({ deleted: gone }, 'metrics history compacted');
  }
}

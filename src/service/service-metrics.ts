/**
 * The service's Prometheus metrics (GET /metrics): what this process handled (heartbeats, claims,
 * reports) and what happened to tasks through it (pickup delay, duration, rows and bytes moved, per
 * gateway). Counts of this process: with several replicas, sum them over instances. The gateways' and
 * nodes' current state, read from the store at each scrape, is in gateway-metrics.ts.
 */
import { Counter, Histogram, Registry } from 'prom-client';
import { collectProcessMetrics } from '../common/process-metrics.ts';

export interface ServiceMetrics {
  registry: Registry;
  heartbeats: Counter;
  heartbeatSeconds: Histogram;
  claims: Counter;
  claimsRejected: Counter<'reason'>;
  attemptsDispatched: Counter;
  reports: Counter<'kind' | 'outcome'>;
  reportBatches: Counter;
  /** From a task's (re)queueing to its claim by the dispatcher. */
  taskPickupDelay: Histogram<'gateway'>;
  /** An attempt's run, from its claim to its outcome. */
  taskDuration: Histogram<'gateway' | 'outcome'>;
  rowsMoved: Counter<'gateway'>;
  bytesMoved: Counter<'gateway'>;
  /** Gateway names by id, for labels (a gateway's name never changes). */
  gatewayNames: Map<string, string>;
}

export function createServiceMetrics(): ServiceMetrics {
  const registry = new Registry();
  collectProcessMetrics(registry, 'ferry_service_');
  return {
    registry,
    heartbeats: new Counter({
      name: 'ferry_heartbeats_total',
      help: 'Heartbeats received from nodes',
      registers: [registry],
    }),
    heartbeatSeconds: new Histogram({
      name: 'ferry_heartbeat_seconds',
      help: 'Time to handle a heartbeat',
      buckets: [0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.5],
      registers: [registry],
    }),
    claims: new Counter({ name: 'ferry_claims_total', help: 'Claims by dispatchers', registers: [registry] }),
    claimsRejected: new Counter({
      name: 'ferry_claims_rejected_total',
      help: 'Claims refused (stale epoch)',
      labelNames: ['reason'],
      registers: [registry],
    }),
    attemptsDispatched: new Counter({
      name: 'ferry_attempts_claimed_total',
      help: 'Attempts handed to dispatchers',
      registers: [registry],
    }),
    reports: new Counter({
      name: 'ferry_attempt_reports_total',
      help: 'Attempt reports from nodes (kind progress or complete), taken or refused',
      labelNames: ['kind', 'outcome'],
      registers: [registry],
    }),
    reportBatches: new Counter({
      name: 'ferry_attempt_report_batches_total',
      help: 'Requests carrying attempt reports (one per batch, or per single report)',
      registers: [registry],
    }),
    taskPickupDelay: new Histogram({
      name: 'ferry_task_pickup_delay_seconds',
      help: 'Time a task waited in the queue before the dispatcher claimed it (queued to started)',
      labelNames: ['gateway'],
      buckets: [0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300, 900, 3600],
      registers: [registry],
    }),
    taskDuration: new Histogram({
      name: 'ferry_task_duration_seconds',
      help: 'Time a task attempt ran, from its claim to its outcome (succeeded or failed)',
      labelNames: ['gateway', 'outcome'],
      buckets: [0.1, 0.5, 1, 2.5, 5, 10, 30, 60, 300, 900, 3600, 14400],
      registers: [registry],
    }),
    rowsMoved: new Counter({
      name: 'ferry_moved_rows_total',
      help: 'Rows written by succeeded task attempts',
      labelNames: ['gateway'],
      registers: [registry],
    }),
    bytesMoved: new Counter({
      name: 'ferry_moved_bytes_total',
      help: 'Bytes written by succeeded task attempts',
      labelNames: ['gateway'],
      registers: [registry],
    }),
    gatewayNames: new Map(),
  };
}

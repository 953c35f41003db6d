/** The service's Prometheus metrics (GET /metrics). */
import { Counter, Histogram, Registry, collectDefaultMetrics } from 'prom-client';

export interface ServiceMetrics {
  registry: Registry;
  heartbeats: Counter;
  heartbeatSeconds: Histogram;
  claims: Counter;
  claimsRejected: Counter<'reason'>;
  attemptsDispatched: Counter;
  attemptsLost: Counter;
  dispatcherChanges: Counter;
  reports: Counter<'kind' | 'outcome'>;
  reportBatches: Counter;
}

export function createServiceMetrics(): ServiceMetrics {
  const registry = new Registry();
  collectDefaultMetrics({ register: registry, prefix: 'ferry_service_' });
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
    attemptsLost: new Counter({
      name: 'ferry_attempts_lost_total',
      help: 'Attempts declared lost (node gone or lease lapsed)',
      registers: [registry],
    }),
    dispatcherChanges: new Counter({
      name: 'ferry_dispatcher_changes_total',
      help: 'Dispatcher elections that changed the holder',
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
  };
}

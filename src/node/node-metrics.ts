/** The node's Prometheus metrics (GET /metrics on the node-to-node port). */
import { Counter, Gauge, Registry, collectDefaultMetrics } from 'prom-client';

export interface NodeMetrics {
  registry: Registry;
  running: Gauge;
  limit: Gauge;
  dispatcher: Gauge;
  dispatched: Counter;
  heartbeatFailures: Counter;
}

export function createNodeMetrics(): NodeMetrics {
  const registry = new Registry();
  collectDefaultMetrics({ register: registry, prefix: 'ferry_node_' });
  return {
    registry,
    running: new Gauge({
      name: 'ferry_node_running_tasks',
      help: 'Tasks running on this node',
      registers: [registry],
    }),
    limit: new Gauge({
      name: 'ferry_node_concurrent_jobs_limit',
      help: 'Concurrent jobs limit',
      registers: [registry],
    }),
    dispatcher: new Gauge({
      name: 'ferry_node_is_dispatcher',
      help: '1 while this node is the dispatcher',
      registers: [registry],
    }),
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
  };
}

/**
 * prom-client's default process and Node.js metrics, under a prefix, minus the three gauges it names
 * like counters (`nodejs_active_handles_total`, `..._requests_total`, `..._resources_total`):
 * Prometheus's conventions keep `_total` for counters, and `promtool check metrics` refuses them.
 * The same figures stay available as `..._active_handles`, `..._active_requests` and `..._active_resources`.
 */
import { Gauge, collectDefaultMetrics, type Registry } from 'prom-client';

export function collectProcessMetrics(registry: Registry, prefix: string): void {
  collectDefaultMetrics({ register: registry, prefix });
  for (const metric of registry.getMetricsAsArray()) {
    const name = (metric as { name?: string }).name ?? '';
    if (metric instanceof Gauge && name.endsWith('_total')) registry.removeSingleMetric(name);
  }
}

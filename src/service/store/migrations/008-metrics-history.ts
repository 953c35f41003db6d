import type { Kysely } from 'kysely';
import type { StoreDialect } from '../store-dialect.ts';

/**
 * Metrics history (src/service/metrics-history.ts writes it): every node's figures and every
 * gateway's queue, sampled every 10 s, kept at that resolution for a while, then averaged into
 * 5-minute points kept longer. `resolution_s` tells the two apart, and is part of the key, so a
 * sample is written at most once per node (or gateway) and bucket, whichever service replica tries.
 * Node rows keep the node's name: history outlives the node. The events index makes the per-gateway
 * event counts of GET /metrics (dispatcher changes, attempts lost) an index scan.
 */
export async function up(db: Kysely<unknown>, dialect: StoreDialect): Promise<void> {
  const real = dialect === 'postgres' ? 'double precision' : 'real';
  await db.schema
    .createTable('node_metrics_history')
    .addColumn('node_id', 'text', (c) => c.notNull())
    .addColumn('resolution_s', 'integer', (c) => c.notNull())
    .addColumn('at', 'bigint', (c) => c.notNull())
    .addColumn('gateway_id', 'text', (c) => c.notNull())
    .addColumn('node_name', 'text', (c) => c.notNull())
    .addColumn('samples', 'integer', (c) => c.notNull())
    .addColumn('status', 'text', (c) => c.notNull())
    .addColumn('cpu_percent', real)
    .addColumn('memory_available_bytes', real)
    .addColumn('memory_total_bytes', real)
    .addColumn('network_in_bps', real)
    .addColumn('network_out_bps', real)
    .addColumn('jobs_running', real)
    .addColumn('jobs_limit', real, (c) => c.notNull())
    .addPrimaryKeyConstraint('node_metrics_history_pk', ['node_id', 'resolution_s', 'at'])
    .execute();
  await db.schema
    .createIndex('node_metrics_history_gateway')
    .on('node_metrics_history')
    .columns(['gateway_id', 'resolution_s', 'at'])
    .execute();
  await db.schema
    .createIndex('node_metrics_history_at')
    .on('node_metrics_history')
    .columns(['resolution_s', 'at'])
    .execute();

  await db.schema
    .createTable('gateway_metrics_history')
    .addColumn('gateway_id', 'text', (c) => c.notNull())
    .addColumn('resolution_s', 'integer', (c) => c.notNull())
    .addColumn('at', 'bigint', (c) => c.notNull())
    .addColumn('samples', 'integer', (c) => c.notNull())
    .addColumn('queued', real, (c) => c.notNull())
    .addColumn('oldest_wait_ms', real, (c) => c.notNull())
    .addPrimaryKeyConstraint('gateway_metrics_history_pk', ['gateway_id', 'resolution_s', 'at'])
    .execute();
  await db.schema
    .createIndex('gateway_metrics_history_at')
    .on('gateway_metrics_history')
    .columns(['resolution_s', 'at'])
    .execute();

  await db.schema.createIndex('events_kind_gateway').on('events').columns(['kind', 'gateway_id']).execute();
}

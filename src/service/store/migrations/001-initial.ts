import type { Kysely } from 'kysely';
import type { StoreDialect } from '../store-dialect.ts';

/** The first schema. Shared by SQLite and PostgreSQL; only the auto-increment column differs. */
export async function up(db: Kysely<unknown>, dialect: StoreDialect): Promise<void> {
  const big = 'bigint';
  await db.schema
    .createTable('gateways')
    .addColumn('id', 'text', (c) => c.primaryKey())
    .addColumn('name', 'text', (c) => c.notNull().unique())
    .addColumn('key1', 'text', (c) => c.notNull())
    .addColumn('key2', 'text', (c) => c.notNull())
    .addColumn('peer_secret', 'text', (c) => c.notNull())
    .addColumn('max_nodes', 'integer')
    .addColumn('created_at', big, (c) => c.notNull())
    .addColumn('dispatcher_node_id', 'text')
    .addColumn('epoch', 'integer', (c) => c.notNull().defaultTo(0))
    .addColumn('lease_until', big, (c) => c.notNull().defaultTo(0))
    .addColumn('dispatcher_reason', 'text', (c) => c.notNull().defaultTo(''))
    .addColumn('dispatcher_changed_at', big, (c) => c.notNull().defaultTo(0))
    .execute();

  await db.schema
    .createTable('nodes')
    .addColumn('id', 'text', (c) => c.primaryKey())
    .addColumn('gateway_id', 'text', (c) => c.notNull().references('gateways.id').onDelete('cascade'))
    .addColumn('name', 'text', (c) => c.notNull())
    .addColumn('seq', big, (c) => c.notNull())
    .addColumn('version', 'text', (c) => c.notNull())
    .addColumn('peer_host', 'text', (c) => c.notNull())
    .addColumn('peer_port', 'integer', (c) => c.notNull())
    .addColumn('tls', 'integer', (c) => c.notNull().defaultTo(0))
    .addColumn('cores', 'integer', (c) => c.notNull())
    .addColumn('memory_bytes', big, (c) => c.notNull())
    .addColumn('token_hash', 'text', (c) => c.notNull().unique())
    .addColumn('registered_at', big, (c) => c.notNull())
    .addColumn('last_seen_at', big, (c) => c.notNull())
    .addColumn('metrics_json', 'text', (c) => c.notNull().defaultTo('{}'))
    .addColumn('running', 'integer', (c) => c.notNull().defaultTo(0))
    .addColumn('limit_default', 'integer', (c) => c.notNull())
    .addColumn('limit_override', 'integer')
    .addColumn('draining', 'integer', (c) => c.notNull().defaultTo(0))
    .addColumn('drain_requested', 'integer', (c) => c.notNull().defaultTo(0))
    .addColumn('upgrading', 'integer', (c) => c.notNull().defaultTo(0))
    .addColumn('reach_json', 'text', (c) => c.notNull().defaultTo('[]'))
    .addColumn('left_at', big)
    .addUniqueConstraint('nodes_gateway_name', ['gateway_id', 'name'])
    .execute();

  await db.schema
    .createTable('linked_services')
    .addColumn('id', 'text', (c) => c.primaryKey())
    .addColumn('name', 'text', (c) => c.notNull().unique())
    .addColumn('type', 'text', (c) => c.notNull())
    .addColumn('gateway_id', 'text', (c) => c.notNull().references('gateways.id'))
    .addColumn('properties_json', 'text', (c) => c.notNull())
    .addColumn('secret_sealed', 'text')
    .addColumn('created_at', big, (c) => c.notNull())
    .addColumn('updated_at', big, (c) => c.notNull())
    .execute();

  await db.schema
    .createTable('pipelines')
    .addColumn('id', 'text', (c) => c.primaryKey())
    .addColumn('name', 'text', (c) => c.notNull().unique())
    .addColumn('spec_json', 'text', (c) => c.notNull())
    .addColumn('version', 'integer', (c) => c.notNull())
    .addColumn('created_at', big, (c) => c.notNull())
    .addColumn('updated_at', big, (c) => c.notNull())
    .execute();

  await db.schema
    .createTable('runs')
    .addColumn('id', 'text', (c) => c.primaryKey())
    .addColumn('pipeline_name', 'text', (c) => c.notNull())
    .addColumn('pipeline_version', 'integer', (c) => c.notNull())
    .addColumn('status', 'text', (c) => c.notNull())
    .addColumn('created_at', big, (c) => c.notNull())
    .addColumn('started_at', big)
    .addColumn('finished_at', big)
    .addColumn('error', 'text')
    .execute();

  await db.schema
    .createTable('activity_runs')
    .addColumn('id', 'text', (c) => c.primaryKey())
    .addColumn('run_id', 'text', (c) => c.notNull().references('runs.id').onDelete('cascade'))
    .addColumn('idx', 'integer', (c) => c.notNull())
    .addColumn('name', 'text', (c) => c.notNull())
    .addColumn('gateway_id', 'text', (c) => c.notNull())
    .addColumn('spec_json', 'text', (c) => c.notNull())
    .addColumn('status', 'text', (c) => c.notNull())
    .addColumn('error', 'text')
    .addColumn('started_at', big)
    .addColumn('finished_at', big)
    .execute();

  await db.schema
    .createTable('tasks')
    .addColumn('id', 'text', (c) => c.primaryKey())
    .addColumn('run_id', 'text', (c) => c.notNull().references('runs.id').onDelete('cascade'))
    .addColumn('activity_run_id', 'text', (c) => c.notNull())
    .addColumn('gateway_id', 'text', (c) => c.notNull())
    .addColumn('kind', 'text', (c) => c.notNull())
    .addColumn('idx', 'integer', (c) => c.notNull())
    .addColumn('work_json', 'text', (c) => c.notNull())
    .addColumn('status', 'text', (c) => c.notNull())
    .addColumn('attempts', 'integer', (c) => c.notNull().defaultTo(0))
    .addColumn('max_attempts', 'integer', (c) => c.notNull())
    .addColumn('backoff_ms', 'integer', (c) => c.notNull())
    .addColumn('max_backoff_ms', 'integer', (c) => c.notNull())
    .addColumn('queued_at', big, (c) => c.notNull())
    .addColumn('not_before', big, (c) => c.notNull())
    .addColumn('node_id', 'text')
    .addColumn('result_json', 'text')
    .addColumn('rows', big, (c) => c.notNull().defaultTo(0))
    .addColumn('bytes', big, (c) => c.notNull().defaultTo(0))
    .addColumn('error', 'text')
    .addColumn('started_at', big)
    .addColumn('finished_at', big)
    .execute();
  await db.schema
    .createIndex('tasks_queue')
    .on('tasks')
    .columns(['gateway_id', 'status', 'queued_at', 'idx'])
    .execute();
  await db.schema.createIndex('tasks_run').on('tasks').columns(['run_id']).execute();
  await db.schema.createIndex('tasks_activity').on('tasks').columns(['activity_run_id', 'status']).execute();

  await db.schema
    .createTable('attempts')
    .addColumn('id', 'text', (c) => c.primaryKey())
    .addColumn('task_id', 'text', (c) => c.notNull().references('tasks.id').onDelete('cascade'))
    .addColumn('run_id', 'text', (c) => c.notNull())
    .addColumn('node_id', 'text', (c) => c.notNull())
    .addColumn('node_name', 'text', (c) => c.notNull())
    .addColumn('epoch', 'integer', (c) => c.notNull())
    .addColumn('status', 'text', (c) => c.notNull())
    .addColumn('created_at', big, (c) => c.notNull())
    .addColumn('started_at', big)
    .addColumn('finished_at', big)
    .addColumn('lease_until', big, (c) => c.notNull())
    .addColumn('rows', big, (c) => c.notNull().defaultTo(0))
    .addColumn('bytes', big, (c) => c.notNull().defaultTo(0))
    .addColumn('error', 'text')
    .execute();
  await db.schema.createIndex('attempts_active').on('attempts').columns(['status', 'lease_until']).execute();
  await db.schema.createIndex('attempts_node').on('attempts').columns(['node_id', 'status']).execute();
  await db.schema.createIndex('attempts_task').on('attempts').columns(['task_id']).execute();

  await db.schema
    .createTable('events')
    .addColumn('id', dialect === 'postgres' ? 'bigserial' : 'integer', (c) =>
      dialect === 'postgres' ? c.primaryKey() : c.primaryKey().autoIncrement(),
    )
    .addColumn('at', big, (c) => c.notNull())
    .addColumn('gateway_id', 'text')
    .addColumn('kind', 'text', (c) => c.notNull())
    .addColumn('message', 'text', (c) => c.notNull())
    .execute();
  await db.schema.createIndex('events_gateway').on('events').columns(['gateway_id', 'id']).execute();
}

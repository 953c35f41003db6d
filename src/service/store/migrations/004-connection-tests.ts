import type { Kysely } from 'kysely';

/**
 * Connection tests of linked services (`ferry linked-service test`): asked through the API, handed
 * to one node in its heartbeat reply, answered by the node. Kept in the store, not in memory, so a
 * test asked of one service replica is handed out by whichever replica the node's heartbeat reaches.
 * A row lives for the length of its API call (and is swept if that call died).
 */
export async function up(db: Kysely<unknown>): Promise<void> {
  await db.schema
    .createTable('connection_tests')
    .addColumn('id', 'text', (c) => c.primaryKey())
    .addColumn('node_id', 'text', (c) => c.notNull().references('nodes.id').onDelete('cascade'))
    .addColumn('linked_service', 'text', (c) => c.notNull())
    .addColumn('write', 'integer', (c) => c.notNull())
    .addColumn('created_at', 'bigint', (c) => c.notNull())
    .addColumn('expires_at', 'bigint', (c) => c.notNull())
    .addColumn('delivered_at', 'bigint')
    .addColumn('report_json', 'text')
    .execute();
  await db.schema.createIndex('connection_tests_node').on('connection_tests').column('node_id').execute();
}

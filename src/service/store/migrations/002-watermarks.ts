import type { Kysely } from 'kysely';

/**
 * Incremental copy: the high mark each activity's last successful run copied up to, per pipeline
 * and watermark column (changing the column starts again from the beginning).
 */
export async function up(db: Kysely<unknown>): Promise<void> {
  await db.schema
    .createTable('watermarks')
    .addColumn('pipeline_name', 'text', (c) => c.notNull())
    .addColumn('activity', 'text', (c) => c.notNull())
    .addColumn('column_name', 'text', (c) => c.notNull())
    .addColumn('value', 'text')
    .addColumn('run_id', 'text', (c) => c.notNull())
    .addColumn('updated_at', 'bigint', (c) => c.notNull())
    .addPrimaryKeyConstraint('watermarks_pk', ['pipeline_name', 'activity'])
    .execute();
}

/**
 * Incremental copy's memory: per pipeline activity, the highest watermark-column value its last
 * successful run copied. Read when a run starts (into the plan task), advanced when an activity run
 * succeeds (in the same transaction that marks it succeeded), never by a failed one.
 */
import type { Kysely } from 'kysely';
import type { Schema } from '../schema.ts';

/** The remembered high mark for this column; null when there is none (or it was for another column). */
export async function getWatermark(
  db: Kysely<Schema>,
  pipeline: string,
  activity: string,
  column: string,
): Promise<string | null> {
  const row = await db
    .selectFrom('watermarks')
    .select(['column_name', 'value'])
    .where('pipeline_name', '=', pipeline)
    .where('activity', '=', activity)
    .executeTakeFirst();
  return row && row.column_name === column ? row.value : null;
}

export async function advanceWatermark(
  db: Kysely<Schema>,
  w: { pipeline: string; activity: string; column: string; value: string | null; runId: string },
  now: number,
): Promise<void> {
  await db
    .insertInto('watermarks')
    .values({
      pipeline_name: w.pipeline,
      activity: w.activity,
      column_name: w.column,
      value: w.value,
      run_id: w.runId,
      updated_at: now,
    })
    .onConflict((oc) =>
      oc.columns(['pipeline_name', 'activity']).doUpdateSet({
        column_name: w.column,
        value: w.value,
        run_id: w.runId,
        updated_at: now,
      }),
    )
    .execute();
}

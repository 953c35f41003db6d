/** Starts a pipeline run: one activity run per activity, each beginning with a `plan` task. */
import type { Kysely } from 'kysely';
import type { Schema } from '../schema.ts';
import { newId } from '../../../common/crypto.ts';
import { queueTasks } from './queue-tasks.ts';
import { getWatermark } from './watermarks.ts';
import { FerryError } from '../../../common/errors.ts';
import type { PipelineSpecT } from '../../../protocol/pipeline.ts';
import { JSON_COLUMNS } from '../json-column.ts';
import { retrySettings } from '../../scheduler/retry-policy.ts';

export interface ActivityPlan {
  /** The activity as applied (no secrets: linked services are resolved again at claim time). */
  activity: PipelineSpecT['activities'][number];
  gatewayId: string;
}

export async function startRun(db: Kysely<Schema>, pipelineName: string, now: number): Promise<string> {
  return db.transaction().execute(async (tx) => {
    const p = await tx
      .selectFrom('pipelines')
      .selectAll()
      .where('name', '=', pipelineName)
      .executeTakeFirst();
    if (!p)
      throw new FerryError('not_found', `pipeline "${pipelineName}" does not exist`, {
        hint: 'apply it with `ferry pipeline apply -f FILE`',
      });
    const spec = JSON_COLUMNS.pipelineSpec.read(p.spec_json, p.name);
    const runId = newId('run');
    await tx
      .insertInto('runs')
      .values({
        id: runId,
        pipeline_name: p.name,
        pipeline_version: p.version,
        status: 'running',
        created_at: now,
        started_at: now,
        finished_at: null,
        error: null,
      })
      .execute();
    let idx = 0;
    for (const activity of spec.activities) {
      const source = await tx
        .selectFrom('linked_services')
        .select(['gateway_id', 'name'])
        .where('name', '=', activity.source.linkedService)
        .executeTakeFirst();
      if (!source)
        throw new FerryError(
          'conflict',
          `linked service "${activity.source.linkedService}" no longer exists`,
        );
      const activityRunId = newId('act');
      // Options are the store's own (checked when the pipeline was applied); only this one is ours.
      const column = (activity.source as Record<string, unknown>)['watermarkColumn'];
      const watermarkColumn = typeof column === 'string' ? column : undefined;
      const watermark =
        watermarkColumn === undefined ? null : await getWatermark(tx, p.name, activity.name, watermarkColumn);
      await tx
        .insertInto('activity_runs')
        .values({
          id: activityRunId,
          run_id: runId,
          idx: idx++,
          name: activity.name,
          gateway_id: source.gateway_id,
          spec_json: JSON.stringify(activity),
          status: 'running',
          error: null,
          started_at: now,
          finished_at: null,
        })
        .execute();
      const retry = retrySettings(activity.retry);
      await queueTasks(
        tx,
        {
          run_id: runId,
          activity_run_id: activityRunId,
          gateway_id: source.gateway_id,
          max_attempts: retry.maxAttempts,
          backoff_ms: retry.backoffMs,
          max_backoff_ms: retry.maxBackoffMs,
        },
        [watermarkColumn === undefined ? { kind: 'plan' } : { kind: 'plan', watermark }],
        now,
      );
    }
    return runId;
  });
}

/**
 * Task state machine (one place decides what happens after an attempt ends):
 *
 *   queued --claim--> running --attempt succeeded--> succeeded
 *                        |--attempt lost with its node, attempts < max--> queued at once, in its old place (the front)
 *                        |--attempt failed/lost, retryable, attempts < max--> queued (at the back, after backoff)
 *                        |--attempt failed/lost otherwise--> failed
 *                        '--attempt released (never started)--> queued (not counted as an attempt)
 *
 * When a task ends, its activity ends once no task of it is queued or running (failed if any
 * failed), and the run ends once all its activities have. An activity whose plan asked for a
 * finalize (a table overwrite's swap) gets one more task once every copy has succeeded, and ends
 * with it. A succeeded activity with a watermark window advances the activity's watermark in the
 * same transaction, so a failed run never moves it.
 */
import type { Transaction } from 'kysely';
import type { Schema, TasksTable } from '../schema.ts';
import { queueTasks } from './queue-tasks.ts';
import { advanceWatermark } from './watermarks.ts';
import { JSON_COLUMNS } from '../json-column.ts';
import { afterFailure } from '../../scheduler/retry-policy.ts';

export type Db = Transaction<Schema>;

/**
 * After a failed or lost attempt: queue the task again, or fail it, as scheduler/retry-policy.ts
 * decides (`nodeLost`: the attempt was lost with its node). Returns true if requeued.
 */
export async function retryOrFail(
  tx: Db,
  task: TasksTable,
  error: string,
  retryable: boolean,
  now: number,
  nodeLost = false,
): Promise<boolean> {
  const settings = {
    maxAttempts: task.max_attempts,
    backoffMs: task.backoff_ms,
    maxBackoffMs: task.max_backoff_ms,
  };
  const next = afterFailure(task.attempts, settings, error, retryable, now, nodeLost);
  if (next.retry) {
    await tx
      .updateTable('tasks')
      .set(
        next.requeuedAt === undefined
          ? { status: 'queued', error, not_before: next.notBefore }
          : { status: 'queued', error, queued_at: next.requeuedAt, not_before: next.notBefore },
      )
      .where('id', '=', task.id)
      .execute();
    return true;
  }
  await tx
    .updateTable('tasks')
    .set({ status: 'failed', error: next.error, finished_at: now })
    .where('id', '=', task.id)
    .execute();
  await settleActivity(tx, task.activity_run_id, now);
  return false;
}

/**
 * Takes the row's write lock for the rest of the transaction (a no-op update: portable across
 * PostgreSQL and SQLite). Without it, two tasks ending at once on PostgreSQL would each still see the
 * other as running, and neither would settle the activity.
 */
async function lockRow(tx: Db, table: 'activity_runs' | 'runs', id: string): Promise<void> {
  await tx
    .updateTable(table)
    .set((eb) => ({ status: eb.ref('status') }))
    .where('id', '=', id)
    .execute();
}

/** Returns true when it queued a finalize task (claimers should be woken). */
export async function settleActivity(tx: Db, activityRunId: string, now: number): Promise<boolean> {
  await lockRow(tx, 'activity_runs', activityRunId);
  // Called after every task ends, so it must not read the activity's tasks: one indexed probe first.
  const open = await tx
    .selectFrom('tasks')
    .select('id')
    .where('activity_run_id', '=', activityRunId)
    .where('status', 'in', ['queued', 'running'])
    .limit(1)
    .executeTakeFirst();
  if (open) return false;
  const activity = await tx
    .selectFrom('activity_runs')
    .select(['run_id', 'status', 'name'])
    .where('id', '=', activityRunId)
    .executeTakeFirstOrThrow();
  if (activity.status === 'succeeded' || activity.status === 'failed') return false;
  const counts = await tx
    .selectFrom('tasks')
    .select([
      'kind',
      'status',
      (eb) => eb.fn.countAll<number>().as('n'),
      (eb) => eb.fn.min('error').as('error'),
    ])
    .where('activity_run_id', '=', activityRunId)
    .groupBy(['kind', 'status'])
    .execute();
  const total = counts.reduce((a, c) => a + Number(c.n), 0);
  const failedGroups = counts.filter((c) => c.status === 'failed');
  const failed =
    failedGroups.length === 0
      ? undefined
      : {
          n: failedGroups.reduce((a, c) => a + Number(c.n), 0),
          error: failedGroups.map((c) => c.error).find((e) => e !== null),
        };
  if (!failed) {
    const plan = await tx
      .selectFrom('tasks')
      .selectAll()
      .where('activity_run_id', '=', activityRunId)
      .where('kind', '=', 'plan')
      .executeTakeFirst();
    const result = plan?.result_json ? JSON_COLUMNS.taskResult.read(plan.result_json, plan.id) : undefined;
    const planned = result?.kind === 'plan' ? result : undefined;
    if (plan && planned?.finalize === true && !counts.some((c) => c.kind === 'finalize')) {
      await queueTasks(tx, plan, [{ kind: 'finalize' }], now);
      return true;
    }
    if (planned?.window) {
      const run = await tx
        .selectFrom('runs')
        .select('pipeline_name')
        .where('id', '=', activity.run_id)
        .executeTakeFirstOrThrow();
      await advanceWatermark(
        tx,
        {
          pipeline: run.pipeline_name,
          activity: activity.name,
          column: planned.window.column,
          value: planned.window.upTo,
          runId: activity.run_id,
        },
        now,
      );
    }
  }
  await tx
    .updateTable('activity_runs')
    .set({
      status: failed ? 'failed' : 'succeeded',
      error: failed ? `${failed.n} of ${total} tasks failed: ${failed.error ?? ''}` : null,
      finished_at: now,
    })
    .where('id', '=', activityRunId)
    .execute();
  await settleRun(tx, activity.run_id, now);
  return false;
}

async function settleRun(tx: Db, runId: string, now: number): Promise<void> {
  await lockRow(tx, 'runs', runId);
  const activities = await tx
    .selectFrom('activity_runs')
    .select(['name', 'status', 'error'])
    .where('run_id', '=', runId)
    .execute();
  if (activities.some((a) => a.status !== 'succeeded' && a.status !== 'failed')) return;
  const failed = activities.filter((a) => a.status === 'failed');
  await tx
    .updateTable('runs')
    .set({
      status: failed.length > 0 ? 'failed' : 'succeeded',
      error: failed.length > 0 ? failed.map((a) => `${a.name}: ${a.error ?? 'failed'}`).join('; ') : null,
      finished_at: now,
    })
    .where('id', '=', runId)
    .execute();
}

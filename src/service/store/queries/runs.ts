/** Reading runs: the list, and one run with its activities, tasks and every attempt (which node ran what). */
import type { Kysely } from 'kysely';
import type { ActivityRunsTable, AttemptsTable, RunsTable, Schema, TasksTable } from '../schema.ts';
import { FerryError } from '../../../common/errors.ts';

export interface RunDetail {
  run: RunsTable;
  activities: ActivityRunsTable[];
  tasks: TasksTable[];
  attempts: AttemptsTable[];
}

export async function listRuns(db: Kysely<Schema>, limit: number, pipeline?: string): Promise<RunsTable[]> {
  return db
    .selectFrom('runs')
    .selectAll()
    .$if(pipeline !== undefined, (q) => q.where('pipeline_name', '=', pipeline ?? ''))
    .orderBy('created_at', 'desc')
    .orderBy('id', 'desc')
    .limit(limit)
    .execute();
}

export async function getRunDetail(db: Kysely<Schema>, runId: string): Promise<RunDetail> {
  const run = await db.selectFrom('runs').selectAll().where('id', '=', runId).executeTakeFirst();
  if (!run)
    throw new FerryError('not_found', `run ${runId} does not exist`, {
      hint: 'list runs with `ferry run list`',
    });
  const activities = await db
    .selectFrom('activity_runs')
    .selectAll()
    .where('run_id', '=', runId)
    .orderBy('idx')
    .execute();
  const tasks = await db
    .selectFrom('tasks')
    .selectAll()
    .where('run_id', '=', runId)
    .orderBy('activity_run_id')
    .orderBy('kind', 'desc')
    .orderBy('idx')
    .execute();
  const attempts = await db
    .selectFrom('attempts')
    .selectAll()
    .where('run_id', '=', runId)
    .orderBy('created_at')
    .execute();
  return { run, activities, tasks, attempts };
}

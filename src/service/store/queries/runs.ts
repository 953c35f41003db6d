/** Reading runs: the list, and one run with its activities, tasks and every attempt (which node ran what). */
import type { Kysely } from 'kysely';
import type { ActivityRunsTable, AttemptsTable, RunsTable, Schema, TasksTable } from '../schema.ts';
import { FerryError } from '../../../common/errors.ts';

export interface RunProgress {
  /** Copy tasks (the plan task is not counted). */
  tasksTotal: number;
  tasksDone: number;
  tasksFailed: number;
  /** Copy tasks an attempt is running now. */
  tasksRunning: number;
  /** Every activity's plan has finished, so tasksTotal is final. */
  planned: boolean;
  rows: number;
  /** Bytes of finished copy tasks plus what running attempts reported so far. */
  bytes: number;
}

export interface RunSummary {
  run: RunsTable;
  activities: ActivityRunsTable[];
  progress: RunProgress;
}

export interface RunDetail extends RunSummary {
  tasks: TasksTable[];
  attempts: AttemptsTable[];
}

/** The gateways a run's activities run on (one row per activity). */
export async function runGateways(db: Kysely<Schema>, runId: string): Promise<string[]> {
  const rows = await db
    .selectFrom('activity_runs')
    .select('gateway_id')
    .where('run_id', '=', runId)
    .execute();
  return rows.map((r) => r.gateway_id);
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

/** Aggregates only: cheap enough to poll while a run of many thousands of tasks is going. */
export async function getRunSummary(db: Kysely<Schema>, runId: string): Promise<RunSummary> {
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
  const groups = await db
    .selectFrom('tasks')
    .select([
      'kind',
      'status',
      (eb) => eb.fn.countAll<number>().as('n'),
      (eb) => eb.fn.sum<number>('rows').as('rows'),
      (eb) => eb.fn.sum<number>('bytes').as('bytes'),
    ])
    .where('run_id', '=', runId)
    .groupBy(['kind', 'status'])
    .execute();
  const inFlight = await db
    .selectFrom('attempts')
    .select((eb) => eb.fn.sum<number>('bytes').as('bytes'))
    .where('run_id', '=', runId)
    .where('status', 'in', ['dispatched', 'running'])
    .executeTakeFirst();
  const copies = groups.filter((g) => g.kind === 'copy');
  const count = (pred: (status: string) => boolean): number =>
    copies.filter((g) => pred(g.status)).reduce((a, g) => a + Number(g.n), 0);
  const plansOpen = groups.some((g) => g.kind === 'plan' && g.status !== 'succeeded');
  return {
    run,
    activities,
    progress: {
      tasksTotal: count(() => true),
      tasksDone: count((s) => s === 'succeeded' || s === 'failed'),
      tasksFailed: count((s) => s === 'failed'),
      tasksRunning: count((s) => s === 'running'),
      planned: !plansOpen,
      rows: copies.reduce((a, g) => a + Number(g.rows ?? 0), 0),
      bytes: copies.reduce((a, g) => a + Number(g.bytes ?? 0), 0) + Number(inFlight?.bytes ?? 0),
    },
  };
}

export async function getRunDetail(db: Kysely<Schema>, runId: string): Promise<RunDetail> {
  const summary = await getRunSummary(db, runId);
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
  return { ...summary, tasks, attempts };
}

/** Inserts queued tasks of one activity run: its plan task, or the copy tasks its plan produced. */
import type { Kysely } from 'kysely';
import type { Schema, TasksTable } from '../schema.ts';
import type { TaskWorkT } from '../../../protocol/task.ts';
import { newId } from '../../../common/crypto.ts';

export type TaskTemplate = Pick<
  TasksTable,
  'run_id' | 'activity_run_id' | 'gateway_id' | 'max_attempts' | 'backoff_ms' | 'max_backoff_ms'
>;

/** Rows per INSERT: well inside SQLite's bound-parameter limit at 22 columns a row. */
const CHUNK = 500;

export async function queueTasks(
  tx: Kysely<Schema>,
  template: TaskTemplate,
  works: readonly TaskWorkT[],
  now: number,
): Promise<void> {
  const rows: TasksTable[] = works.map((work) => ({
    run_id: template.run_id,
    activity_run_id: template.activity_run_id,
    gateway_id: template.gateway_id,
    max_attempts: template.max_attempts,
    backoff_ms: template.backoff_ms,
    max_backoff_ms: template.max_backoff_ms,
    id: newId('task'),
    kind: work.kind,
    idx: work.kind === 'copy' ? work.index : 0,
    work_json: JSON.stringify(work),
    status: 'queued',
    attempts: 0,
    queued_at: now,
    not_before: now,
    node_id: null,
    result_json: null,
    rows: 0,
    bytes: 0,
    error: null,
    started_at: null,
    finished_at: null,
  }));
  for (let i = 0; i < rows.length; i += CHUNK) {
    await tx
      .insertInto('tasks')
      .values(rows.slice(i, i + CHUNK))
      .execute();
  }
}

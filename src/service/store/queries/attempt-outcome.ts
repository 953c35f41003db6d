/** What an ended attempt did, for the service's task metrics: its gateway, outcome, times, rows and bytes. */
import type { Kysely } from 'kysely';
import type { Schema } from '../schema.ts';

export interface AttemptOutcome {
  gatewayId: string;
  status: string;
  createdAt: number;
  finishedAt: number | null;
  rows: number;
  bytes: number;
}

export async function findAttemptOutcome(
  db: Kysely<Schema>,
  attemptId: string,
): Promise<AttemptOutcome | undefined> {
  const row = await db
    .selectFrom('attempts')
    .innerJoin('tasks', 'tasks.id', 'attempts.task_id')
    .select([
      'tasks.gateway_id as gatewayId',
      'attempts.status as status',
      'attempts.created_at as createdAt',
      'attempts.finished_at as finishedAt',
      'attempts.rows as rows',
      'attempts.bytes as bytes',
    ])
    .where('attempts.id', '=', attemptId)
    .executeTakeFirst();
  return (
    row && {
      ...row,
      createdAt: Number(row.createdAt),
      finishedAt: row.finishedAt === null ? null : Number(row.finishedAt),
    }
  );
}

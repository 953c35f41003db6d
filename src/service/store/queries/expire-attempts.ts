/**
 * The sweep's half that protects tasks: an attempt whose lease lapsed, or whose node went Offline,
 * is lost; its task is queued again (or fails after its last attempt). A late report from a lost
 * attempt is refused (attempt-reports.ts), so a task's output is committed by one attempt only.
 */
import type { Kysely } from 'kysely';
import type { Schema } from '../schema.ts';
import { ACTIVE_ATTEMPT } from './active-attempts.ts';
import { retryOrFail } from './settle-task.ts';
import { recordEvent } from './record-event.ts';

/** How a lost attempt's error begins, by why it was lost (the advisor counts them: lost-attempts.ts). */
export const LOST_WITH_NODE = 'lost: node ';
export const LOST_NO_PROGRESS = 'lost: no progress ';

export async function expireAttempts(
  db: Kysely<Schema>,
  now: number,
  offlineAfterMs: number,
): Promise<number> {
  const candidates = await db
    .selectFrom('attempts')
    .innerJoin('nodes', 'nodes.id', 'attempts.node_id')
    .select([
      'attempts.id as id',
      'nodes.name as node_name',
      'nodes.gateway_id as gateway_id',
      'attempts.lease_until as lease_until',
      'nodes.last_seen_at as last_seen_at',
      'nodes.left_at as left_at',
    ])
    .where('attempts.status', 'in', ACTIVE_ATTEMPT)
    .where((eb) =>
      eb.or([
        eb('attempts.lease_until', '<', now),
        eb('nodes.last_seen_at', '<', now - offlineAfterMs),
        eb('nodes.left_at', 'is not', null),
      ]),
    )
    .execute();
  let lost = 0;
  for (const c of candidates) {
    const nodeGone = c.left_at !== null || now - c.last_seen_at > offlineAfterMs;
    const why = nodeGone
      ? `${LOST_WITH_NODE}${c.node_name} went Offline`
      : `${LOST_NO_PROGRESS}from node ${c.node_name} for ${((now - c.lease_until) / 1000).toFixed(1)} s past its lease`;
    await db.transaction().execute(async (tx) => {
      const res = await tx
        .updateTable('attempts')
        .set({ status: 'lost', finished_at: now, error: why })
        .where('id', '=', c.id)
        .where('status', 'in', ACTIVE_ATTEMPT)
        // A progress report may have renewed the lease since the candidates were read.
        .$if(!nodeGone, (q) => q.where('lease_until', '<', now))
        .executeTakeFirst();
      if (Number(res.numUpdatedRows) !== 1) return;
      const attempt = await tx
        .selectFrom('attempts')
        .select('task_id')
        .where('id', '=', c.id)
        .executeTakeFirstOrThrow();
      const task = await tx
        .selectFrom('tasks')
        .selectAll()
        .where('id', '=', attempt.task_id)
        .executeTakeFirstOrThrow();
      await retryOrFail(tx, task, why, true, now, nodeGone);
      await recordEvent(tx, now, c.gateway_id, 'attempt_lost', `attempt ${c.id} of task ${task.id} ${why}`);
      lost++;
    });
  }
  return lost;
}

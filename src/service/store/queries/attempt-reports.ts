/**
 * Reports from the node running an attempt: progress (renews the lease), completion (what a result
 * is worth is scheduler/verification.ts's to say), release.
 * A report for an attempt that is no longer active (lost, released, or another node's) is refused
 * with `lease_lost`: the node must stop and discard its output, since the task is someone else's now.
 *
 * Attempt states: dispatched -> running -> succeeded | failed ; dispatched|running -> lost | released.
 */
import type { Kysely, Transaction } from 'kysely';
import type { AttemptsTable, NodesTable, Schema } from '../schema.ts';
import type { CompleteRequestT, ProgressRequestT } from '../../../protocol/agent.ts';
import { FerryError } from '../../../common/errors.ts';
import { retryOrFail, settleActivity } from './settle-task.ts';
import { ACTIVE_ATTEMPT } from './active-attempts.ts';
import { queueTasks } from './queue-tasks.ts';
import { verifyResult } from '../../scheduler/verification.ts';

/** Why a report for an attempt that is not this node's active attempt is refused. */
async function refusal(tx: Kysely<Schema>, node: NodesTable, attemptId: string): Promise<FerryError> {
  const attempt = await tx
    .selectFrom('attempts')
    .select(['node_id', 'status', 'error'])
    .where('id', '=', attemptId)
    .executeTakeFirst();
  if (!attempt) return new FerryError('not_found', `attempt ${attemptId} does not exist`);
  if (attempt.node_id !== node.id)
    return new FerryError('lease_lost', `attempt ${attemptId} belongs to another node`);
  return new FerryError(
    'lease_lost',
    `attempt ${attemptId} is ${attempt.status}${attempt.error ? `: ${attempt.error}` : ''}`,
  );
}

/**
 * Locks this node's active attempt (the conditional update takes the row lock: a concurrent sweep
 * declaring it lost, or a repeated report, waits for this transaction and then sees its outcome) and
 * returns it; refuses if it is not active.
 */
async function activeAttempt(
  tx: Transaction<Schema>,
  node: NodesTable,
  attemptId: string,
): Promise<AttemptsTable> {
  const locked = await tx
    .updateTable('attempts')
    .set((eb) => ({ status: eb.ref('status') }))
    .where('id', '=', attemptId)
    .where('node_id', '=', node.id)
    .where('status', 'in', ACTIVE_ATTEMPT)
    .executeTakeFirst();
  if (Number(locked.numUpdatedRows) !== 1) throw await refusal(tx, node, attemptId);
  return tx.selectFrom('attempts').selectAll().where('id', '=', attemptId).executeTakeFirstOrThrow();
}

/** Renews the lease: one conditional update on the hot path, a read only when refusing. */
export async function reportProgress(
  db: Kysely<Schema>,
  node: NodesTable,
  attemptId: string,
  p: ProgressRequestT,
  now: number,
  leaseMs: number,
): Promise<void> {
  const res = await db
    .updateTable('attempts')
    .set((eb) => ({
      status: 'running',
      started_at: eb.fn.coalesce('started_at', eb.val(now)),
      rows: p.rows,
      bytes: p.bytes,
      lease_until: now + leaseMs,
    }))
    .where('id', '=', attemptId)
    .where('node_id', '=', node.id)
    .where('status', 'in', ACTIVE_ATTEMPT)
    .executeTakeFirst();
  if (Number(res.numUpdatedRows) !== 1) throw await refusal(db, node, attemptId);
}

/** Returns true when new tasks were queued (a plan finished), so claimers can be woken. */
export async function completeAttempt(
  db: Kysely<Schema>,
  node: NodesTable,
  attemptId: string,
  c: CompleteRequestT,
  now: number,
): Promise<boolean> {
  return db.transaction().execute(async (tx) => {
    const attempt = await activeAttempt(tx, node, attemptId);
    const task = await tx
      .selectFrom('tasks')
      .selectAll()
      .where('id', '=', attempt.task_id)
      .executeTakeFirstOrThrow();
    if (c.outcome === 'failed') {
      const msg = `${c.error.message}`;
      await tx
        .updateTable('attempts')
        .set({ status: 'failed', finished_at: now, error: msg })
        .where('id', '=', attemptId)
        .execute();
      return retryOrFail(tx, task, msg, c.error.retryable, now);
    }
    const result = c.result;
    const verdict = verifyResult(task.kind, result);
    if (!verdict.ok) {
      await tx
        .updateTable('attempts')
        .set({ status: 'failed', finished_at: now, error: verdict.error })
        .where('id', '=', attemptId)
        .execute();
      return retryOrFail(tx, task, verdict.error, verdict.retryable, now);
    }
    const { rows, bytes } = verdict;
    await tx
      .updateTable('attempts')
      .set({ status: 'succeeded', finished_at: now, rows, bytes })
      .where('id', '=', attemptId)
      .execute();
    await tx
      .updateTable('tasks')
      .set({
        status: 'succeeded',
        finished_at: now,
        rows,
        bytes,
        result_json: JSON.stringify(result),
        error: null,
        node_id: node.id,
      })
      .where('id', '=', task.id)
      .execute();
    let queued = false;
    if (result.kind === 'plan') {
      await queueTasks(
        tx,
        task,
        result.partitions.map((partition, index) =>
          result.window
            ? { kind: 'copy', index, partition, window: result.window }
            : { kind: 'copy', index, partition },
        ),
        now,
      );
      queued = result.partitions.length > 0;
    }
    // Settling may queue the activity's finalize task: claimers must hear of that too.
    return (await settleActivity(tx, task.activity_run_id, now)) || queued;
  });
}

/**
 * The dispatcher could not deliver the attempt, or its worker gave it back (shutdown): queue it again.
 * Refused when there is nothing to give back: not_found for an unknown attempt, conflict (409) for one
 * that already ended (succeeded, failed, lost, released) or that its worker has started.
 */
export async function releaseAttempt(
  db: Kysely<Schema>,
  node: NodesTable,
  attemptId: string,
  reason: string,
  now: number,
): Promise<void> {
  await db.transaction().execute(async (tx) => {
    const attempt = await tx
      .selectFrom('attempts')
      .selectAll()
      .where('id', '=', attemptId)
      .executeTakeFirst();
    if (!attempt) throw new FerryError('not_found', `attempt ${attemptId} does not exist`);
    const holder = await tx
      .selectFrom('nodes')
      .select('gateway_id')
      .where('id', '=', attempt.node_id)
      .executeTakeFirst();
    if (attempt.node_id !== node.id && holder?.gateway_id !== node.gateway_id)
      throw new FerryError('forbidden', `attempt ${attemptId} is not of this gateway`);
    if (!(ACTIVE_ATTEMPT as readonly string[]).includes(attempt.status))
      throw new FerryError(
        'conflict',
        `attempt ${attemptId} is ${attempt.status}; only a dispatched or running attempt can be released`,
      );
    // The dispatcher may give back only what its worker never started: a delivery that timed out may
    // still have reached the worker, and once that worker reported it running, the attempt is its.
    if (attempt.node_id !== node.id && attempt.status !== 'dispatched')
      throw new FerryError(
        'conflict',
        `attempt ${attemptId} is ${attempt.status} on its worker, which keeps it; it was not released`,
      );
    await tx
      .updateTable('attempts')
      .set({ status: 'released', finished_at: now, error: reason })
      .where('id', '=', attemptId)
      .execute();
    const task = await tx
      .selectFrom('tasks')
      .select(['id', 'attempts'])
      .where('id', '=', attempt.task_id)
      .executeTakeFirstOrThrow();
    await tx
      .updateTable('tasks')
      .set({
        status: 'queued',
        attempts: Math.max(0, task.attempts - 1),
        queued_at: now,
        not_before: now + 100,
      })
      .where('id', '=', task.id)
      .where('status', '=', 'running')
      .execute();
  });
}

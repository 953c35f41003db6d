/**
 * How many of a gateway's attempts were lost since a time, by why (expire-attempts.ts writes the
 * reasons): their lease lapsed with no progress (the task timed out on a node that still answered),
 * or their node went Offline. Attempts moved off a deleted node count as neither.
 */
import type { Kysely } from 'kysely';
import type { Schema } from '../schema.ts';
import { LOST_NO_PROGRESS, LOST_WITH_NODE } from './expire-attempts.ts';

export async function countLostAttempts(
  db: Kysely<Schema>,
  gatewayId: string,
  since: number,
): Promise<{ timedOut: number; withNode: number }> {
  const count = async (prefix: string, suffix: string): Promise<number> => {
    const row = await db
      .selectFrom('attempts')
      .innerJoin('tasks', 'tasks.id', 'attempts.task_id')
      .select((eb) => eb.fn.countAll<number | string>().as('n'))
      .where('tasks.gateway_id', '=', gatewayId)
      .where('attempts.status', '=', 'lost')
      .where('attempts.finished_at', '>=', since)
      .where('attempts.error', 'like', `${prefix}%${suffix}`)
      .executeTakeFirst();
    return Number(row?.n ?? 0);
  };
  return {
    timedOut: await count(LOST_NO_PROGRESS, ''),
    withNode: await count(LOST_WITH_NODE, ' went Offline'),
  };
}

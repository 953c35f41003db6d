import type { Kysely, Transaction } from 'kysely';
import type { Schema } from '../schema.ts';

export const ACTIVE_ATTEMPT = ['dispatched', 'running'] as const;

/** How many attempts in `statuses` each node holds. */
async function countByNode(
  db: Kysely<Schema> | Transaction<Schema>,
  nodeIds: readonly string[],
  statuses: readonly string[],
): Promise<Map<string, number>> {
  const out = new Map<string, number>();
  if (nodeIds.length === 0) return out;
  const rows = await db
    .selectFrom('attempts')
    .select(['node_id', (eb) => eb.fn.countAll<number>().as('n')])
    .where('status', 'in', statuses)
    .where('node_id', 'in', nodeIds)
    .groupBy('node_id')
    .execute();
  for (const r of rows) out.set(r.node_id, Number(r.n));
  return out;
}

/** Attempts handed to each node that it has not started yet (dispatched, not running): its queue. */
export function waitingAttemptsByNode(
  db: Kysely<Schema> | Transaction<Schema>,
  nodeIds: readonly string[],
): Promise<Map<string, number>> {
  return countByNode(db, nodeIds, ['dispatched']);
}

/** Attempts each node holds now (dispatched or running): the service's own count for limits. */
export function activeAttemptsByNode(
  db: Kysely<Schema> | Transaction<Schema>,
  nodeIds: readonly string[],
): Promise<Map<string, number>> {
  return countByNode(db, nodeIds, ACTIVE_ATTEMPT);
}

import type { Kysely, Transaction } from 'kysely';
import type { Schema } from '../schema.ts';

export const ACTIVE_ATTEMPT = ['dispatched', 'running'] as const;

/** Attempts handed to each node that it has not started yet (dispatched, not running): its queue. */
export async function waitingAttemptsByNode(
  db: Kysely<Schema> | Transaction<Schema>,
  nodeIds: readonly string[],
): Promise<Map<string, number>> {
  const out = new Map<string, number>();
  if (nodeIds.length === 0) return out;
  const rows = await db
    .selectFrom('attempts')
    .select(['node_id', (eb) => eb.fn.countAll<number>().as('n')])
    .where('status', '=', 'dispatched')
    .where('node_id', 'in', nodeIds)
    .groupBy('node_id')
    .execute();
  for (const r of rows) out.set(r.node_id, Number(r.n));
  return out;
}

/** Attempts each node holds now (dispatched or running): the service's own count for limits. */
export async function activeAttemptsByNode(
  db: Kysely<Schema> | Transaction<Schema>,
  nodeIds: readonly string[],
): Promise<Map<string, number>> {
  const out = new Map<string, number>();
  if (nodeIds.length === 0) return out;
  const rows = await db
    .selectFrom('attempts')
    .select(['node_id', (eb) => eb.fn.countAll<number>().as('n')])
    .where('status', 'in', ACTIVE_ATTEMPT)
    .where('node_id', 'in', nodeIds)
    .groupBy('node_id')
    .execute();
  for (const r of rows) out.set(r.node_id, Number(r.n));
  return out;
}

/**
 * The grace after the service could not hear its nodes (it was restarting, or its store was away):
 * the dispatcher leases and attempt leases that lapsed meanwhile are extended by one period, so the
 * nodes, which kept working, can report again before anyone is judged.
 */
import type { Kysely } from 'kysely';
import type { Schema } from '../schema.ts';
import { ACTIVE_ATTEMPT } from './active-attempts.ts';

export async function extendLeases(
  db: Kysely<Schema>,
  now: number,
  o: { dispatcherLeaseMs: number; attemptLeaseMs: number },
): Promise<void> {
  await db
    .updateTable('gateways')
    .set({ lease_until: now + o.dispatcherLeaseMs })
    .where('dispatcher_node_id', 'is not', null)
    .where('lease_until', '<', now + o.dispatcherLeaseMs)
    .execute();
  await db
    .updateTable('attempts')
    .set({ lease_until: now + o.attemptLeaseMs })
    .where('status', 'in', ACTIVE_ATTEMPT)
    .where('lease_until', '<', now + o.attemptLeaseMs)
    .execute();
}

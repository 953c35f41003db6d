/** Reading the operator-visible history (record-event.ts writes it): a gateway's events, newest first. */
import type { Kysely, Selectable } from 'kysely';
import type { EventsTable, Schema } from '../schema.ts';

export async function listGatewayEvents(
  db: Kysely<Schema>,
  gatewayId: string,
  limit: number,
): Promise<Selectable<EventsTable>[]> {
  return db
    .selectFrom('events')
    .selectAll()
    .where('gateway_id', '=', gatewayId)
    .orderBy('id', 'desc')
    .limit(limit)
    .execute();
}

import type { Kysely, Transaction } from 'kysely';
import type { Schema } from '../schema.ts';

/** The operator-visible history: elections, lost attempts, registrations. */
export async function recordEvent(
  db: Kysely<Schema> | Transaction<Schema>,
  at: number,
  gatewayId: string | null,
  kind: string,
  message: string,
): Promise<void> {
  await db.insertInto('events').values({ at, gateway_id: gatewayId, kind, message }).execute();
}

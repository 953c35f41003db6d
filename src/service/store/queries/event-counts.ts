/**
 * How many events of each kind each gateway has (GET /metrics turns the dispatcher changes and
 * lost attempts into counters): one grouped count over the events index of migration 008.
 */
import type { Kysely } from 'kysely';
import type { Schema } from '../schema.ts';

export async function countGatewayEvents(
  db: Kysely<Schema>,
  kinds: readonly string[],
): Promise<{ gatewayId: string; kind: string; count: number }[]> {
  const rows = await db
    .selectFrom('events')
    .select((eb) => ['gateway_id', 'kind', eb.fn.countAll<number | string>().as('n')])
    .where('kind', 'in', [...kinds])
    .where('gateway_id', 'is not', null)
    .groupBy(['kind', 'gateway_id'])
    .execute();
  return rows.map((r) => ({ gatewayId: r.gateway_id ?? '', kind: r.kind, count: Number(r.n) }));
}

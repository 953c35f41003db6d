/**
 * Gateway-held credentials in the store (protocol/credentials.ts): the gateway's public key (first
 * reported wins), the versions the service grants, the relays it passes on without opening, and the
 * resync counter. No secret is ever here: only public keys, version numbers and sealed boxes.
 */
import type { Kysely } from 'kysely';
import type { GatewaysTable, Schema } from '../schema.ts';
import type { CredentialEntryT, NodeCredentialsT } from '../../../protocol/credentials.ts';

/** Keeps `key` as the gateway's credential key if it has none yet; returns the gateway's key. */
export async function adoptGatewayKey(
  db: Kysely<Schema>,
  gateway: GatewaysTable,
  key: string | null,
): Promise<string | null> {
  if (gateway.credential_key !== null || key === null) return gateway.credential_key;
  await db
    .updateTable('gateways')
    .set({ credential_key: key })
    .where('id', '=', gateway.id)
    .where('credential_key', 'is', null)
    .execute();
  const row = await db
    .selectFrom('gateways')
    .select('credential_key')
    .where('id', '=', gateway.id)
    .executeTakeFirstOrThrow();
  gateway.credential_key = row.credential_key;
  return row.credential_key;
}

/** The next version of a linked service's credentials (never one granted before). */
export async function nextCredentialVersion(db: Kysely<Schema>, linkedServiceId: string): Promise<number> {
  return db.transaction().execute(async (tx) => {
    await tx
      .updateTable('linked_services')
      .set((eb) => ({ credential_version: eb('credential_version', '+', 1) }))
      .where('id', '=', linkedServiceId)
      .execute();
    const row = await tx
      .selectFrom('linked_services')
      .select('credential_version')
      .where('id', '=', linkedServiceId)
      .executeTakeFirstOrThrow();
    return row.credential_version;
  });
}

/** Keeps a relay; false if that version was already sent. */
export async function storeRelay(
  db: Kysely<Schema>,
  gatewayId: string,
  entry: CredentialEntryT,
  now: number,
): Promise<boolean> {
  const r = await db
    .insertInto('credential_relays')
    .values({
      gateway_id: gatewayId,
      linked_service: entry.linkedService,
      version: entry.version,
      box: entry.box,
      created_at: now,
    })
    .onConflict((oc) => oc.doNothing())
    .executeTakeFirst();
  return Number(r.numInsertedOrUpdatedRows ?? 0n) > 0;
}

/**
 * The relays the dispatcher (holding `held`) does not hold yet. A relay is forgotten only once every
 * node up holds its version (`up`), or a newer one replaced it: a dispatcher that dies before it
 * pushed a relayed credential to anyone leaves it here for the next one.
 */
export async function relaysFor(
  db: Kysely<Schema>,
  gatewayId: string,
  held: NodeCredentialsT,
  up: readonly NodeCredentialsT[],
): Promise<CredentialEntryT[]> {
  const rows = await db
    .selectFrom('credential_relays')
    .selectAll()
    .where('gateway_id', '=', gatewayId)
    .orderBy('version')
    .execute();
  const out: CredentialEntryT[] = [];
  for (const r of rows) {
    const newest = Math.max(
      ...rows.filter((x) => x.linked_service === r.linked_service).map((x) => x.version),
    );
    const everywhere = up.length > 0 && up.every((n) => (n.versions[r.linked_service] ?? 0) >= r.version);
    if (everywhere || r.version < newest)
      await db
        .deleteFrom('credential_relays')
        .where('gateway_id', '=', gatewayId)
        .where('linked_service', '=', r.linked_service)
        .where('version', '=', r.version)
        .execute();
    else if (r.version > (held.versions[r.linked_service] ?? 0))
      out.push({ linkedService: r.linked_service, version: r.version, box: r.box });
  }
  return out;
}

/** `ferry gateway resync-credentials`: the dispatcher pushes its whole set again. */
export async function requestResync(db: Kysely<Schema>, gatewayId: string): Promise<void> {
  await db
    .updateTable('gateways')
    .set((eb) => ({ credential_resync: eb('credential_resync', '+', 1) }))
    .where('id', '=', gatewayId)
    .execute();
}

import type { Kysely } from 'kysely';

/**
 * The first version of a gateway-held linked service's credentials that counts for it. A linked
 * service created again under a name (or moved to the gateway, or to another gateway) starts above
 * every version its gateway's nodes hold under that name: what they hold from before is never used
 * for it, and its own new versions are taken. 1 for existing rows: every version counts, as before.
 */
export async function up(db: Kysely<unknown>): Promise<void> {
  await db.schema
    .alterTable('linked_services')
    .addColumn('credential_floor', 'integer', (c) => c.notNull().defaultTo(1))
    .execute();
}

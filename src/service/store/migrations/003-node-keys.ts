import type { Kysely } from 'kysely';

/**
 * Each node's public keys (protocol/node-keys.ts): the Ed25519 key its node-to-node requests are
 * signed with and the X25519 key task secrets are sealed to. Null until the node sends them.
 */
export async function up(db: Kysely<unknown>): Promise<void> {
  await db.schema.alterTable('nodes').addColumn('sign_public_key', 'text').execute();
  await db.schema.alterTable('nodes').addColumn('seal_public_key', 'text').execute();
}

import type { Kysely } from 'kysely';

/**
 * Credentials held by the gateway (protocol/credentials.ts). Per linked service: where its secret
 * lives ('service' or 'gateway') and the last version the service granted. Per gateway: its
 * credential public key (the first a node reported) and the resync counter. Per node: what it reports
 * holding. And the relays: values sealed to the gateway key, set through the service, waiting for the
 * dispatcher to take them (the service cannot open them).
 */
export async function up(db: Kysely<unknown>): Promise<void> {
  await db.schema
    .alterTable('linked_services')
    .addColumn('credentials', 'text', (c) => c.notNull().defaultTo('service'))
    .execute();
  await db.schema
    .alterTable('linked_services')
    .addColumn('credential_version', 'integer', (c) => c.notNull().defaultTo(0))
    .execute();
  await db.schema.alterTable('gateways').addColumn('credential_key', 'text').execute();
  await db.schema
    .alterTable('gateways')
    .addColumn('credential_resync', 'integer', (c) => c.notNull().defaultTo(0))
    .execute();
  await db.schema
    .alterTable('nodes')
    .addColumn('credentials_json', 'text', (c) => c.notNull().defaultTo('{"gatewayKey":null,"versions":{}}'))
    .execute();
  await db.schema
    .createTable('credential_relays')
    .addColumn('gateway_id', 'text', (c) => c.notNull())
    .addColumn('linked_service', 'text', (c) => c.notNull())
    .addColumn('version', 'integer', (c) => c.notNull())
    .addColumn('box', 'text', (c) => c.notNull())
    .addColumn('created_at', 'bigint', (c) => c.notNull())
    .addPrimaryKeyConstraint('credential_relays_pk', ['gateway_id', 'linked_service', 'version'])
    .execute();
}

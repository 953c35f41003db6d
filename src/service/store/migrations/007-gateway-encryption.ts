import type { Kysely } from 'kysely';

/**
 * Node-to-node encryption set per gateway (`none` or `tls`), the gateway's own CA (certificate, and
 * private key sealed with the service's master key; made when a node first asks for a certificate),
 * and per node: what it last reported about its node-to-node transport, and the certificate the
 * gateway CA issued it (with the address it names and when to renew it). Numbered 007: 006 is taken
 * by the credentials work.
 */
export async function up(db: Kysely<unknown>): Promise<void> {
  await db.schema
    .alterTable('gateways')
    .addColumn('encryption', 'text', (c) => c.notNull().defaultTo('none'))
    .execute();
  await db.schema.alterTable('gateways').addColumn('ca_cert', 'text').execute();
  await db.schema.alterTable('gateways').addColumn('ca_key_sealed', 'text').execute();
  await db.schema.alterTable('nodes').addColumn('tls_report_json', 'text').execute();
  await db.schema.alterTable('nodes').addColumn('tls_public_key', 'text').execute();
  await db.schema.alterTable('nodes').addColumn('tls_cert', 'text').execute();
  await db.schema.alterTable('nodes').addColumn('tls_cert_host', 'text').execute();
  await db.schema.alterTable('nodes').addColumn('tls_cert_renew_at', 'bigint').execute();
}

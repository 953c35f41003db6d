/**
 * Node-to-node encryption in the store: a gateway's mode, its CA (made once: the first writer wins,
 * so two replicas issuing at once end up with one CA), and the certificate issued to each node.
 */
import type { Kysely } from 'kysely';
import type { GatewaysTable, NodesTable, Schema } from '../schema.ts';
import type { EncryptionMode } from '../../../protocol/encryption.ts';
import { getGatewayByName } from './gateways.ts';
import { recordEvent } from './record-event.ts';

/** Sets the mode (an event records a change); the nodes move over at their next heartbeats. */
export async function setGatewayEncryption(
  db: Kysely<Schema>,
  name: string,
  mode: EncryptionMode,
  now: number,
): Promise<GatewaysTable> {
  const gw = await getGatewayByName(db, name);
  if (gw.encryption === mode) return gw;
  await db.transaction().execute(async (tx) => {
    await tx.updateTable('gateways').set({ encryption: mode }).where('id', '=', gw.id).execute();
    await recordEvent(
      tx,
      now,
      gw.id,
      'encryption',
      `node-to-node encryption set to ${mode} (was ${gw.encryption}): every node moves over at its next heartbeats`,
    );
  });
  return { ...gw, encryption: mode };
}

/** The gateway's CA, keeping one stored earlier (by another replica) over `made`. */
export async function saveGatewayCa(
  db: Kysely<Schema>,
  gatewayId: string,
  made: { cert: string; keySealed: string },
): Promise<{ cert: string; keySealed: string }> {
  await db
    .updateTable('gateways')
    .set({ ca_cert: made.cert, ca_key_sealed: made.keySealed })
    .where('id', '=', gatewayId)
    .where('ca_cert', 'is', null)
    .execute();
  const row = await db
    .selectFrom('gateways')
    .select(['ca_cert', 'ca_key_sealed'])
    .where('id', '=', gatewayId)
    .executeTakeFirstOrThrow();
  return row.ca_cert !== null && row.ca_key_sealed !== null
    ? { cert: row.ca_cert, keySealed: row.ca_key_sealed }
    : made;
}

export async function readGatewayCa(
  db: Kysely<Schema>,
  gatewayId: string,
): Promise<{ cert: string; keySealed: string } | undefined> {
  const row = await db
    .selectFrom('gateways')
    .select(['ca_cert', 'ca_key_sealed'])
    .where('id', '=', gatewayId)
    .executeTakeFirst();
  return row?.ca_cert && row.ca_key_sealed ? { cert: row.ca_cert, keySealed: row.ca_key_sealed } : undefined;
}

/** The node's certificate as issued, with the key and address it names and when to renew it. */
export async function saveNodeCertificate(
  db: Kysely<Schema>,
  nodeId: string,
  c: Pick<NodesTable, 'tls_public_key' | 'tls_cert' | 'tls_cert_host' | 'tls_cert_renew_at'>,
): Promise<void> {
  await db.updateTable('nodes').set(c).where('id', '=', nodeId).execute();
}

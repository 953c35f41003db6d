/** Linked services: a store connection (type + properties) on one gateway. Secrets are sealed at rest. */
import type { Kysely } from 'kysely';
import type { LinkedServicesTable, Schema } from '../schema.ts';
import { FerryError } from '../../../common/errors.ts';
import { newId } from '../../../common/crypto.ts';
import { JSON_COLUMNS } from '../json-column.ts';

export interface LinkedServiceInput {
  name: string;
  type: string;
  gatewayId: string;
  properties: Record<string, unknown>;
  secretSealed: string | null;
  /** Where its secret lives (protocol/credentials.ts); 'service' unless said. */
  credentials?: 'service' | 'gateway';
}

/** The highest version of `name`'s gateway-held credentials any node of the gateway reports holding. */
async function heldByNodes(db: Kysely<Schema>, gatewayId: string, name: string): Promise<number> {
  const rows = await db
    .selectFrom('nodes')
    .select(['id', 'credentials_json'])
    .where('gateway_id', '=', gatewayId)
    .execute();
  let max = 0;
  for (const r of rows)
    max = Math.max(max, JSON_COLUMNS.nodeCredentials.read(r.credentials_json, r.id).versions[name] ?? 0);
  return max;
}

/**
 * Creates or replaces (same name) a linked service. One that starts keeping its credentials in a
 * gateway (created, switched from the service, or moved to another gateway) starts above every
 * version that gateway's nodes hold under its name: nothing they hold from before counts for it.
 */
export async function upsertLinkedService(
  db: Kysely<Schema>,
  input: LinkedServiceInput,
  now: number,
): Promise<LinkedServicesTable> {
  const existing = await db
    .selectFrom('linked_services')
    .selectAll()
    .where('name', '=', input.name)
    .executeTakeFirst();
  const credentials = input.credentials ?? 'service';
  const fresh =
    credentials === 'gateway' &&
    (!existing || existing.credentials !== 'gateway' || existing.gateway_id !== input.gatewayId);
  let version = existing?.credential_version ?? 0;
  let floor = existing?.credential_floor ?? 1;
  if (fresh) {
    version = Math.max(version, await heldByNodes(db, input.gatewayId, input.name));
    floor = version + 1;
  }
  const row: LinkedServicesTable = {
    id: existing?.id ?? newId('ls'),
    name: input.name,
    type: input.type,
    gateway_id: input.gatewayId,
    properties_json: JSON.stringify(input.properties),
    secret_sealed: input.secretSealed,
    credentials,
    // Versions only grow, whatever the linked service becomes: an old grant never names a new version.
    credential_version: version,
    credential_floor: floor,
    created_at: existing?.created_at ?? now,
    updated_at: now,
  };
  if (existing) await db.updateTable('linked_services').set(row).where('id', '=', existing.id).execute();
  else await db.insertInto('linked_services').values(row).execute();
  return row;
}

export async function getLinkedService(db: Kysely<Schema>, name: string): Promise<LinkedServicesTable> {
  const row = await db.selectFrom('linked_services').selectAll().where('name', '=', name).executeTakeFirst();
  if (!row)
    throw new FerryError('not_found', `linked service "${name}" does not exist`, {
      hint: 'create it with `ferry linked-service create`',
    });
  return row;
}

/** The linked service's store type and gateway, if it exists. */
export async function findLinkedService(
  db: Kysely<Schema>,
  name: string,
): Promise<Pick<LinkedServicesTable, 'type' | 'gateway_id'> | undefined> {
  return db
    .selectFrom('linked_services')
    .select(['type', 'gateway_id'])
    .where('name', '=', name)
    .executeTakeFirst();
}

export async function listLinkedServices(db: Kysely<Schema>): Promise<LinkedServicesTable[]> {
  return db.selectFrom('linked_services').selectAll().orderBy('name').execute();
}

/** The pipelines that read from and that write to a linked service, by name. */
export async function linkedServiceUsers(
  db: Kysely<Schema>,
  name: string,
): Promise<{ readers: string[]; writers: string[] }> {
  const pipelines = await db.selectFrom('pipelines').select(['name', 'spec_json']).orderBy('name').execute();
  const readers: string[] = [];
  const writers: string[] = [];
  for (const p of pipelines) {
    const spec = JSON_COLUMNS.pipelineSpec.read(p.spec_json, p.name);
    if (spec.activities.some((a) => a.source.linkedService === name)) readers.push(p.name);
    if (spec.activities.some((a) => a.sink.linkedService === name)) writers.push(p.name);
  }
  return { readers, writers };
}

export async function deleteLinkedService(db: Kysely<Schema>, name: string): Promise<void> {
  await getLinkedService(db, name);
  const { readers, writers } = await linkedServiceUsers(db, name);
  const users = [...new Set([...readers, ...writers])].sort();
  if (users.length > 0) {
    throw new FerryError('conflict', `linked service "${name}" is used by pipelines: ${users.join(', ')}`);
  }
  await db.deleteFrom('linked_services').where('name', '=', name).execute();
}

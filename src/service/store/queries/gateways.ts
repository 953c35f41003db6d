/** Logical gateways: create, read (by name, id or key), regenerate keys, delete. */
import type { Kysely } from 'kysely';
import type { GatewaysTable, Schema } from '../schema.ts';
import { FerryError } from '../../../common/errors.ts';
import { newId, randomToken } from '../../../common/crypto.ts';

/** An authentication key names its gateway so an operator can tell keys apart: `ferry-<gw>-<random>`. */
function newKey(gatewayName: string): string {
  return `ferry_${gatewayName}_${randomToken(24)}`;
}

export async function createGateway(
  db: Kysely<Schema>,
  name: string,
  maxNodes: number | null,
  now: number,
): Promise<GatewaysTable> {
  const existing = await db.selectFrom('gateways').select('id').where('name', '=', name).executeTakeFirst();
  if (existing) throw new FerryError('conflict', `gateway "${name}" already exists`);
  const row: GatewaysTable = {
    id: newId('gw'),
    name,
    key1: newKey(name),
    key2: newKey(name),
    peer_secret: randomToken(32),
    max_nodes: maxNodes,
    created_at: now,
    dispatcher_node_id: null,
    epoch: 0,
    lease_until: 0,
    dispatcher_reason: '',
    dispatcher_changed_at: 0,
    credential_key: null,
    credential_resync: 0,
    encryption: 'none',
    ca_cert: null,
    ca_key_sealed: null,
  };
  await db.insertInto('gateways').values(row).execute();
  return row;
}

export async function getGatewayByName(db: Kysely<Schema>, name: string): Promise<GatewaysTable> {
  const row = await db.selectFrom('gateways').selectAll().where('name', '=', name).executeTakeFirst();
  if (!row)
    throw new FerryError('not_found', `gateway "${name}" does not exist`, {
      hint: 'list gateways with `ferry gateway list`',
    });
  return row;
}

export async function listGateways(db: Kysely<Schema>): Promise<GatewaysTable[]> {
  return db.selectFrom('gateways').selectAll().orderBy('name').execute();
}

export async function findGateway(db: Kysely<Schema>, id: string): Promise<GatewaysTable | undefined> {
  return db.selectFrom('gateways').selectAll().where('id', '=', id).executeTakeFirst();
}

export async function listGatewayIds(db: Kysely<Schema>): Promise<string[]> {
  return (await db.selectFrom('gateways').select('id').execute()).map((g) => g.id);
}

/** Each gateway's name by its id. */
export async function gatewayNames(db: Kysely<Schema>): Promise<Map<string, string>> {
  const rows = await db.selectFrom('gateways').select(['id', 'name']).execute();
  return new Map(rows.map((g) => [g.id, g.name]));
}

/** The gateway holding `key` as its key1 or key2, if any. */
export async function findGatewayByKey(db: Kysely<Schema>, key: string): Promise<GatewaysTable | undefined> {
  return db
    .selectFrom('gateways')
    .selectAll()
    .where((eb) => eb.or([eb('key1', '=', key), eb('key2', '=', key)]))
    .executeTakeFirst();
}

export async function regenerateKey(
  db: Kysely<Schema>,
  name: string,
  which: 'key1' | 'key2',
): Promise<GatewaysTable> {
  const gw = await getGatewayByName(db, name);
  await db
    .updateTable('gateways')
    .set({ [which]: newKey(name) })
    .where('id', '=', gw.id)
    .execute();
  return getGatewayByName(db, name);
}

export async function updateGateway(
  db: Kysely<Schema>,
  name: string,
  change: { maxNodes?: number | null },
): Promise<GatewaysTable> {
  const gw = await getGatewayByName(db, name);
  if (change.maxNodes !== undefined)
    await db.updateTable('gateways').set({ max_nodes: change.maxNodes }).where('id', '=', gw.id).execute();
  return getGatewayByName(db, name);
}

export async function deleteGateway(db: Kysely<Schema>, name: string): Promise<void> {
  const gw = await getGatewayByName(db, name);
  const used = await db
    .selectFrom('linked_services')
    .select('name')
    .where('gateway_id', '=', gw.id)
    .execute();
  if (used.length > 0) {
    throw new FerryError(
      'conflict',
      `gateway "${name}" is used by linked services: ${used.map((u) => u.name).join(', ')}`,
      {
        hint: 'delete those linked services first',
      },
    );
  }
  const active = await db
    .selectFrom('tasks')
    .select((eb) => eb.fn.countAll<number>().as('n'))
    .where('gateway_id', '=', gw.id)
    .where('status', 'in', ['queued', 'running'])
    .executeTakeFirstOrThrow();
  if (Number(active.n) > 0)
    throw new FerryError('conflict', `gateway "${name}" has ${active.n} unfinished tasks`);
  await db.transaction().execute(async (tx) => {
    await tx.deleteFrom('nodes').where('gateway_id', '=', gw.id).execute();
    await tx.deleteFrom('gateways').where('id', '=', gw.id).execute();
  });
}

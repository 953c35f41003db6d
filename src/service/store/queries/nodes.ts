/** Operator actions on nodes: list (with derived statuses), set the limit, drain, resume, delete. */
import type { Kysely } from 'kysely';
import type { NodesTable, Schema } from '../schema.ts';
import { FerryError } from '../../../common/errors.ts';
import { hashToken } from '../../../common/crypto.ts';
import { getGatewayByName } from './gateways.ts';
import { recordEvent } from './record-event.ts';
import { ACTIVE_ATTEMPT } from './active-attempts.ts';
import { retryOrFail } from './settle-task.ts';

export async function getNodeByName(
  db: Kysely<Schema>,
  gatewayName: string,
  nodeName: string,
): Promise<NodesTable> {
  const gw = await getGatewayByName(db, gatewayName);
  const node = await db
    .selectFrom('nodes')
    .selectAll()
    .where('gateway_id', '=', gw.id)
    .where('name', '=', nodeName)
    .executeTakeFirst();
  if (!node)
    throw new FerryError('not_found', `gateway "${gatewayName}" has no node "${nodeName}"`, {
      hint: `list them with \`ferry node list ${gatewayName}\``,
    });
  return node;
}

/** A gateway's nodes in registration order (the order elections break ties in). */
export async function listGatewayNodes(db: Kysely<Schema>, gatewayId: string): Promise<NodesTable[]> {
  return db.selectFrom('nodes').selectAll().where('gateway_id', '=', gatewayId).orderBy('seq').execute();
}

export async function getNodeByToken(db: Kysely<Schema>, token: string): Promise<NodesTable | undefined> {
  return db.selectFrom('nodes').selectAll().where('token_hash', '=', hashToken(token)).executeTakeFirst();
}

export async function setNodeLimit(
  db: Kysely<Schema>,
  gatewayName: string,
  nodeName: string,
  limit: number | null,
  now: number,
): Promise<NodesTable> {
  const node = await getNodeByName(db, gatewayName, nodeName);
  await db.updateTable('nodes').set({ limit_override: limit }).where('id', '=', node.id).execute();
  await recordEvent(
    db,
    now,
    node.gateway_id,
    'limit_changed',
    `${nodeName} concurrent jobs limit set to ${limit ?? `its default (${node.limit_default})`}`,
  );
  return { ...node, limit_override: limit };
}

export async function setNodeDrain(
  db: Kysely<Schema>,
  gatewayName: string,
  nodeName: string,
  drain: boolean,
  now: number,
): Promise<NodesTable> {
  const node = await getNodeByName(db, gatewayName, nodeName);
  await db
    .updateTable('nodes')
    .set({ drain_requested: drain ? 1 : 0 })
    .where('id', '=', node.id)
    .execute();
  await recordEvent(
    db,
    now,
    node.gateway_id,
    drain ? 'node_drain' : 'node_resume',
    `${nodeName} ${drain ? 'draining: takes no new tasks' : 'resumed'}`,
  );
  return { ...node, drain_requested: drain ? 1 : 0 };
}

/** Removes a node from its gateway. Its running attempts are lost and their tasks queued again now. */
export async function deleteNode(db: Kysely<Schema>, node: NodesTable, now: number): Promise<void> {
  await db.transaction().execute(async (tx) => {
    const active = await tx
      .selectFrom('attempts')
      .select(['id', 'task_id'])
      .where('node_id', '=', node.id)
      .where('status', 'in', ACTIVE_ATTEMPT)
      .execute();
    for (const a of active) {
      const why = `lost: node ${node.name} was deleted`;
      await tx
        .updateTable('attempts')
        .set({ status: 'lost', finished_at: now, error: why })
        .where('id', '=', a.id)
        .execute();
      const task = await tx
        .selectFrom('tasks')
        .selectAll()
        .where('id', '=', a.task_id)
        .executeTakeFirstOrThrow();
      await retryOrFail(tx, task, why, true, now, true);
    }
    const reason = `${node.name} was deleted`;
    const released = await tx
      .updateTable('gateways')
      .set((eb) => ({
        dispatcher_node_id: null,
        lease_until: 0,
        epoch: eb('epoch', '+', 1),
        dispatcher_reason: reason,
        dispatcher_changed_at: now,
      }))
      .where('dispatcher_node_id', '=', node.id)
      .executeTakeFirst();
    // Every dispatcher change is an event with its reason (apply-election.ts writes the others).
    if (Number(released.numUpdatedRows) > 0) {
      const gw = await tx
        .selectFrom('gateways')
        .select('epoch')
        .where('id', '=', node.gateway_id)
        .executeTakeFirstOrThrow();
      await recordEvent(
        tx,
        now,
        node.gateway_id,
        'dispatcher_changed',
        `dispatcher ${node.name} -> none (epoch ${gw.epoch}): ${reason}`,
      );
    }
    await tx.deleteFrom('nodes').where('id', '=', node.id).execute();
    await recordEvent(
      tx,
      now,
      node.gateway_id,
      'node_deleted',
      `${node.name} deleted${active.length > 0 ? `; ${active.length} attempts moved to other nodes` : ''}`,
    );
  });
}

import type { Kysely, Transaction } from 'kysely';
import type { Schema } from '../schema.ts';
import { buildGatewayState, type GatewayState } from '../../scheduler/gateway-state.ts';
import { decideDispatcher } from '../../scheduler/election.ts';
import type { SchedulerTimings } from '../../scheduler/timings.ts';
import { activeAttemptsByNode } from './active-attempts.ts';
import { recordEvent } from './record-event.ts';
import { findGateway } from './gateways.ts';
import { listGatewayNodes } from './nodes.ts';

/**
 * Runs the election for one gateway and writes its outcome. The update is conditional on the epoch
 * read, so two service replicas deciding at once cannot both win. Returns true if the role changed.
 */
export async function applyElection(
  tx: Transaction<Schema>,
  state: GatewayState,
  now: number,
  o: SchedulerTimings,
): Promise<boolean> {
  // Right after a service restart, a gateway that has a dispatcher keeps it until nodes reconnect.
  if (state.gateway.dispatcher_node_id !== null && !o.electionsEnabled(now)) return false;
  const active = await activeAttemptsByNode(
    tx,
    state.nodes.map((n) => n.row.id),
  );
  const decision = decideDispatcher(state, active, now, o);
  if (!decision) return false;
  const gw = state.gateway;
  if (decision.nodeId === gw.dispatcher_node_id && gw.lease_until > now) return false;
  const epoch = gw.epoch + 1;
  const res = await tx
    .updateTable('gateways')
    .set({
      dispatcher_node_id: decision.nodeId,
      epoch,
      lease_until: decision.nodeId === null ? 0 : now + o.dispatcherLeaseMs,
      dispatcher_reason: decision.reason,
      dispatcher_changed_at: now,
    })
    .where('id', '=', gw.id)
    .where('epoch', '=', gw.epoch)
    .executeTakeFirst();
  if (Number(res.numUpdatedRows) !== 1) return false;
  const from = state.dispatcher?.row.name ?? 'none';
  const to = state.nodes.find((n) => n.row.id === decision.nodeId)?.row.name ?? 'none';
  await recordEvent(
    tx,
    now,
    gw.id,
    'dispatcher_changed',
    `dispatcher ${from} -> ${to} (epoch ${epoch}): ${decision.reason}`,
  );
  gw.dispatcher_node_id = decision.nodeId;
  gw.epoch = epoch;
  gw.lease_until = decision.nodeId === null ? 0 : now + o.dispatcherLeaseMs;
  gw.dispatcher_reason = decision.reason;
  gw.dispatcher_changed_at = now;
  return true;
}

/**
 * The sweep's election for one gateway: reads the gateway and its nodes and applies the election,
 * in one transaction. Returns true if the role changed (false too when the gateway is gone).
 */
export async function electDispatcher(
  db: Kysely<Schema>,
  gatewayId: string,
  now: number,
  o: SchedulerTimings,
): Promise<boolean> {
  return db.transaction().execute(async (tx) => {
    const gateway = await findGateway(tx, gatewayId);
    if (!gateway) return false;
    const state = buildGatewayState(gateway, await listGatewayNodes(tx, gatewayId), now, o);
    return applyElection(tx, state, now, o);
  });
}

/** A gateway's state (scheduler/gateway-state.ts) from its row and its nodes' rows as stored now. */
import type { Kysely } from 'kysely';
import type { Schema } from '../schema.ts';
import { buildGatewayState, type GatewayState } from '../../scheduler/gateway-state.ts';
import type { StatusOptions } from '../../scheduler/node-status.ts';
import { findGateway } from './gateways.ts';
import { listGatewayNodes } from './nodes.ts';

/** Undefined when the gateway does not exist. */
export async function loadGatewayState(
  db: Kysely<Schema>,
  gatewayId: string,
  now: number,
  o: StatusOptions,
): Promise<GatewayState | undefined> {
  const gateway = await findGateway(db, gatewayId);
  if (!gateway) return undefined;
  return buildGatewayState(gateway, await listGatewayNodes(db, gatewayId), now, o);
}

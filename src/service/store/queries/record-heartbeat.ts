/**
 * A node's heartbeat: store what it reported, renew the leases of the attempts it runs (and tell it
 * which ones it no longer owns), renew or settle the dispatcher lease, and answer with its role.
 */
import type { Kysely } from 'kysely';
import type { NodesTable, Schema } from '../schema.ts';
import type { HeartbeatRequestT, HeartbeatResponseT } from '../../../protocol/agent.ts';
import { buildGatewayState } from '../../scheduler/gateway-state.ts';
import { applyElection } from './apply-election.ts';
import { ACTIVE_ATTEMPT } from './active-attempts.ts';
import { listGatewayNodes } from './nodes.ts';
import type { SchedulerTimings } from '../../scheduler/timings.ts';
import { adoptGatewayKey, relaysFor } from './gateway-credentials.ts';

/** A node from before gateway-held credentials reports none. */
const NO_CREDENTIALS = { gatewayKey: null, versions: {} };

export async function recordHeartbeat(
  db: Kysely<Schema>,
  node: NodesTable,
  hb: HeartbeatRequestT,
  now: number,
  t: SchedulerTimings,
): Promise<Omit<HeartbeatResponseT, 'servicePublicKey' | 'dispatcherLease'>> {
  return db.transaction().execute(async (tx) => {
    await tx
      .updateTable('nodes')
      .set({
        version: hb.version,
        metrics_json: JSON.stringify(hb.metrics),
        running: hb.running.length,
        limit_default: hb.defaultLimit,
        draining: hb.draining ? 1 : 0,
        upgrading: hb.upgrading ? 1 : 0,
        tls: hb.tls ? 1 : 0,
        tls_report_json: hb.encryption ? JSON.stringify(hb.encryption) : null,
        peer_host: hb.peerHost,
        peer_port: hb.peerPort,
        reach_json: JSON.stringify(hb.reach),
        last_seen_at: now,
        left_at: hb.leaving ? now : null,
        sign_public_key: hb.signPublicKey,
        seal_public_key: hb.sealPublicKey,
        credentials_json: JSON.stringify(hb.credentials ?? NO_CREDENTIALS),
      })
      .where('id', '=', node.id)
      .execute();

    let revoked: string[] = [];
    if (hb.running.length > 0) {
      const owned = await tx
        .selectFrom('attempts')
        .select('id')
        .where('node_id', '=', node.id)
        .where('id', 'in', hb.running)
        .where('status', 'in', ACTIVE_ATTEMPT)
        .execute();
      const ownedIds = owned.map((o) => o.id);
      const ownedSet = new Set(ownedIds);
      revoked = hb.running.filter((id) => !ownedSet.has(id));
      if (ownedIds.length > 0) {
        await tx
          .updateTable('attempts')
          .set({ lease_until: now + t.attemptLeaseMs })
          .where('id', 'in', ownedIds)
          .execute();
      }
    }

    const gateway = await tx
      .selectFrom('gateways')
      .selectAll()
      .where('id', '=', node.gateway_id)
      .executeTakeFirstOrThrow();
    let rows = await listGatewayNodes(tx, node.gateway_id);
    let state = buildGatewayState(gateway, rows, now, t);
    if (gateway.dispatcher_node_id === node.id && gateway.lease_until > now && !hb.leaving) {
      await tx
        .updateTable('gateways')
        .set({ lease_until: now + t.dispatcherLeaseMs })
        .where('id', '=', gateway.id)
        .where('epoch', '=', gateway.epoch)
        .execute();
      gateway.lease_until = now + t.dispatcherLeaseMs;
    }
    if (await applyElection(tx, state, now, t)) {
      rows = await listGatewayNodes(tx, node.gateway_id);
      state = buildGatewayState(gateway, rows, now, t);
    }
    const me = state.nodes.find((n) => n.row.id === node.id);
    const isDispatcher = gateway.dispatcher_node_id === node.id;
    const held = hb.credentials ?? NO_CREDENTIALS;
    const gatewayKey = await adoptGatewayKey(tx, gateway, held.gatewayKey);
    return {
      nodeId: node.id,
      gatewayName: gateway.name,
      role: isDispatcher ? 'dispatcher' : 'worker',
      epoch: gateway.epoch,
      dispatcherNodeId: gateway.dispatcher_node_id,
      status: me?.status.status ?? 'Offline',
      statusHint: me?.status.hint ?? '',
      limit: node.limit_override,
      drain: node.drain_requested === 1,
      peers: state.nodes
        .filter((n) => n.row.id !== node.id && n.row.left_at === null)
        .map((n) => ({
          nodeId: n.row.id,
          name: n.row.name,
          url: n.url,
          eligible: n.eligible,
          limit: n.limit,
          running: n.row.running,
          signPublicKey: n.row.sign_public_key,
          sealPublicKey: n.row.seal_public_key,
          live: n.status.status !== 'Offline',
          credentials: n.credentials,
        })),
      revoked,
      heartbeatIntervalMs: t.heartbeatIntervalMs,
      credentials: {
        gatewayKey,
        relays:
          isDispatcher && !hb.leaving
            ? await relaysFor(
                tx,
                gateway.id,
                held,
                state.nodes
                  .filter((n) => n.status.status !== 'Offline')
                  .map((n) => (n.row.id === node.id ? held : n.credentials)),
              )
            : [],
        resync: gateway.credential_resync,
      },
      encryption: { mode: state.encryption, settled: state.encryptionSettled },
    };
  });
}

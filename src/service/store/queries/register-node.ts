/**
 * Node registration with an authentication key. Refused, with a message that says what to do, for:
 * a key no gateway holds (wrong or regenerated), a name the gateway already has, a gateway at its
 * node cap, and a version lower than the gateway's.
 */
import type { Kysely } from 'kysely';
import type { Schema } from '../schema.ts';
import type { RegisterRequestT } from '../../../protocol/agent.ts';
import { FerryError } from '../../../common/errors.ts';
import { hashToken, newId, randomToken } from '../../../common/crypto.ts';
import { compareVersions } from '../../../protocol/version.ts';
import { gatewayVersion, versionVoters, type StatusOptions } from '../../scheduler/node-status.ts';
import { toFacts } from '../../scheduler/gateway-state.ts';
import { recordEvent } from './record-event.ts';
import { findGatewayByKey } from './gateways.ts';

const INVALID_KEY = 'the authentication key is not valid for any gateway';

/** The refusal of a key no gateway holds (counted per address by the key attempt limiter). */
export function invalidKey(): FerryError {
  return new FerryError('registration_refused', INVALID_KEY, {
    hint: 'keys change when regenerated: get the current one with `ferry gateway keys GATEWAY`',
  });
}

export function isInvalidKey(err: unknown): boolean {
  return err instanceof FerryError && err.code === 'registration_refused' && err.message === INVALID_KEY;
}

export interface Registered {
  nodeId: string;
  nodeToken: string;
  gatewayId: string;
  gatewayName: string;
}

export async function registerNode(
  db: Kysely<Schema>,
  req: RegisterRequestT,
  defaultLimit: number,
  now: number,
  o: StatusOptions,
): Promise<Registered> {
  return db.transaction().execute(async (tx) => {
    const gw = await findGatewayByKey(tx, req.key);
    if (!gw) throw invalidKey();
    const nodes = await tx.selectFrom('nodes').selectAll().where('gateway_id', '=', gw.id).execute();
    if (nodes.some((n) => n.name === req.name)) {
      throw new FerryError(
        'registration_refused',
        `gateway "${gw.name}" already has a node named "${req.name}"`,
        {
          hint: `choose another --name, or remove the old one first with \`ferry node delete ${gw.name} ${req.name}\``,
        },
      );
    }
    if (gw.max_nodes !== null && nodes.length >= gw.max_nodes) {
      throw new FerryError(
        'registration_refused',
        `gateway "${gw.name}" has its maximum of ${gw.max_nodes} nodes`,
        {
          hint: `raise it with \`ferry gateway update ${gw.name} --max-nodes N\` or remove a node`,
        },
      );
    }
    // The version of the nodes that are up: one that registered and went away sets no bar.
    const version = gatewayVersion(
      versionVoters(
        nodes.map((r) => toFacts(r)),
        now,
        o,
      ),
    );
    if (version !== null && compareVersions(req.version, version) < 0) {
      throw new FerryError(
        'registration_refused',
        `node version ${req.version} is lower than gateway "${gw.name}" version ${version}`,
        {
          hint: `install Ferry ${version} or later on this machine`,
        },
      );
    }
    const token = randomToken(32);
    const nodeId = newId('node');
    const seq =
      (
        await tx
          .selectFrom('nodes')
          .select((eb) => eb.fn.max('seq').as('m'))
          .executeTakeFirst()
      )?.m ?? 0;
    await tx
      .insertInto('nodes')
      .values({
        id: nodeId,
        gateway_id: gw.id,
        name: req.name,
        seq: Number(seq) + 1,
        version: req.version,
        peer_host: req.peerHost,
        peer_port: req.peerPort,
        tls: req.tls ? 1 : 0,
        cores: req.cores,
        memory_bytes: req.memoryBytes,
        token_hash: hashToken(token),
        registered_at: now,
        last_seen_at: now,
        limit_default: defaultLimit,
        limit_override: null,
        metrics_json: '{}', // no heartbeat yet: Offline and without a vote until one (gateway-state.ts)
        running: 0,
        draining: 0,
        drain_requested: 0,
        upgrading: 0,
        reach_json: '[]',
        left_at: null,
        sign_public_key: req.signPublicKey,
        seal_public_key: req.sealPublicKey,
        credentials_json: JSON.stringify({ gatewayKey: null, versions: {} }),
      })
      .execute();
    await recordEvent(
      tx,
      now,
      gw.id,
      'node_registered',
      `${req.name} registered (version ${req.version}, ${req.peerHost}:${req.peerPort})`,
    );
    return { nodeId, nodeToken: token, gatewayId: gw.id, gatewayName: gw.name };
  });
}

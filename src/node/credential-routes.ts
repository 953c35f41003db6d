/**
 * The credential routes of the node-to-node port (protocol/credentials.ts):
 *   POST /v1/credentials/push   the dispatcher of the current epoch (its lease token, for an epoch
 *                               no older than the newest this node has heard of) sends entries
 *                               this node is behind on, sealed to this node
 *   POST /v1/credentials/pull   a member asks for entries (and the gateway key), sealed to it
 *   POST /admin/credentials     an operator sets a linked service's values here, with a grant from
 *                               the service; the values are sealed to the gateway key
 * Who may call is checked by the peer server before the body is read (peer-auth.ts, grant-auth.ts).
 */
import { FerryError } from '../common/errors.ts';
import type { Logger } from '../common/logger.ts';
import {
  asBoundCredential,
  CredentialDirectSet,
  CredentialPull,
  CredentialPush,
  setBoxId,
  type CredentialPullResponseT,
} from '../protocol/credentials.ts';
import { leaseVouches } from '../protocol/dispatcher-lease.ts';
import { openSecrets } from '../protocol/sealed-secrets.ts';
import { validator } from '../protocol/validate.ts';
import type { CredentialStore } from './credential-store.ts';
import { sealEntry, sealGatewayKey, takeFromPeer } from './credential-sync.ts';
import type { PeerAuth } from './peer-auth.ts';
import type { LeaseKey } from './peer-routes.ts';
import type { PeerRoute } from './peer-server.ts';

const pushValidator = validator(CredentialPush);
const pullValidator = validator(CredentialPull);
const setValidator = validator(CredentialDirectSet);

/** A whole credential set pushed at once. */
export const MAX_CREDENTIAL_BODY = 16 * 1024 * 1024;
/** One linked service's values. */
const MAX_SET_BODY = 512 * 1024;

export interface CredentialRouteDeps {
  store: CredentialStore;
  selfId: string;
  gatewayId: string;
  sealPrivateKey: string;
  leaseKey: LeaseKey;
  peerAuth: PeerAuth;
  /**
   * The newest dispatcher epoch this node has heard of (worker.ts): a push under an older one comes
   * from a former dispatcher, whose lease token of that epoch still verifies.
   */
  epoch(): number;
  /** The gateway's key as the latest heartbeat named it (null: none yet, or no heartbeat yet). */
  gatewayKey(): string | null;
  log: Logger;
}

export function credentialRoutes(d: CredentialRouteDeps): Record<string, PeerRoute> {
  const self = { nodeId: d.selfId, sealPrivateKey: d.sealPrivateKey };
  return {
    'POST /v1/credentials/push': {
      maxBody: MAX_CREDENTIAL_BODY,
      handle: async (body, caller) => {
        const req = pushValidator.parse(body, 'credential push');
        if (req.epoch < d.epoch())
          throw new FerryError(
            'stale_epoch',
            `credential push from epoch ${req.epoch} refused: the current dispatcher epoch is ${d.epoch()}`,
          );
        const vouched = leaseVouches(req.lease, d.leaseKey.key, {
          gatewayId: caller.gatewayId,
          senderNodeId: caller.nodeId,
          epoch: req.epoch,
        });
        if (!vouched)
          throw new FerryError(
            'unauthorized',
            'credential push refused: it comes from a node the service does not name dispatcher of this epoch',
          );
        const taken = takeFromPeer(d.store, self, req, d.gatewayKey());
        if (taken > 0) d.log.info({ from: caller.nodeId, taken }, 'credentials received from the dispatcher');
        return { credentials: d.store.held() };
      },
    },
    'POST /v1/credentials/pull': {
      maxBody: 1024 * 1024,
      handle: async (body, caller): Promise<CredentialPullResponseT> => {
        const req = pullValidator.parse(body, 'credential pull');
        const sealKey = d.peerAuth.sealKeyOf(caller.nodeId);
        if (!sealKey)
          throw new FerryError('conflict', 'the service lists no seal key for the asking node yet');
        const out: CredentialPullResponseT = {
          entries: req.linkedServices.flatMap((n) => sealEntry(d.store, n, caller.nodeId, sealKey) ?? []),
        };
        const key = req.gatewayKey ? sealGatewayKey(d.store, caller.nodeId, sealKey) : undefined;
        if (key !== undefined) out.gatewayKey = key;
        return out;
      },
    },
    'POST /admin/credentials': {
      auth: 'grant',
      maxBody: MAX_SET_BODY,
      handle: async (body, caller) => {
        const req = setValidator.parse(body, 'credential');
        const { grant } = caller;
        if (req.linkedService !== grant.linkedService || req.version !== grant.version)
          throw new FerryError(
            'unauthorized',
            `credential refused: the grant is for ${grant.linkedService} version ${grant.version}`,
          );
        const key = d.store.gatewayKey;
        if (!key || key.publicKey !== d.gatewayKey())
          throw new FerryError(
            'unavailable',
            'this node does not hold the gateway key yet; retry in a few seconds',
            {
              hint: 'a node receives the gateway key from the dispatcher within a heartbeat or two of joining',
            },
          );
        let opened: Record<string, unknown>;
        try {
          opened = openSecrets(
            key.privateKey,
            req.box,
            setBoxId(grant.gatewayId, req.linkedService, req.version),
            'credential',
          );
        } catch {
          throw new FerryError(
            'bad_request',
            'the credential is not sealed to this gateway key for this grant',
          );
        }
        if (!d.store.put(req.linkedService, req.version, asBoundCredential(opened)))
          throw new FerryError(
            'conflict',
            `this node already holds version ${d.store.version(req.linkedService)} of ${req.linkedService}`,
          );
        d.log.info(
          { linkedService: req.linkedService, version: req.version },
          'credentials set on this node',
        );
        return { credentials: d.store.held() };
      },
    },
  };
}

/**
 * Certificates for nodes that have none of their own: each heartbeat of such a node carries the
 * public half of its TLS key; the service answers with a certificate from the gateway's CA when the
 * node does not hold the current one. A new certificate is issued when the node's key or advertise
 * address changed, and two thirds into the old one's validity (rotation before expiry: the node
 * swaps it in live). Issued in both encryption modes, so that a change to `tls` finds every node
 * ready. The gateway's CA is made at the first request.
 */
import type { Kysely } from 'kysely';
import type { NodesTable, Schema } from '../store/schema.ts';
import type { HeartbeatRequestT } from '../../protocol/agent.ts';
import type { EncryptionOrderT } from '../../protocol/encryption.ts';
import type { Logger } from '../../common/logger.ts';
import { seal, unseal } from '../../common/crypto.ts';
import { findGateway } from '../store/queries/gateways.ts';
import { readGatewayCa, saveGatewayCa, saveNodeCertificate } from '../store/queries/gateway-tls.ts';
import { createGatewayCa, fingerprint, issueNodeCertificate, type GatewayCa } from './gateway-ca.ts';

export interface NodeCertificatesDeps {
  db: Kysely<Schema>;
  masterKey: Buffer;
  /** How long an issued certificate is valid (the service's nodeCertValidityMs). */
  validityMs: number;
  log: Logger;
}

export class NodeCertificates {
  readonly #d: NodeCertificatesDeps;

  constructor(deps: NodeCertificatesDeps) {
    this.#d = deps;
  }

  /** What the heartbeat reply carries for `node`: its certificate and the CA, when it lacks them. */
  async forHeartbeat(
    node: NodesTable,
    hb: HeartbeatRequestT,
    now: number,
  ): Promise<Pick<EncryptionOrderT, 'certificate' | 'ca'>> {
    const publicKey = hb.encryption?.publicKey;
    if (publicKey === undefined) return {};
    let certPem = node.tls_cert;
    const current =
      certPem !== null &&
      node.tls_public_key === publicKey &&
      node.tls_cert_host === hb.peerHost &&
      now < (node.tls_cert_renew_at ?? 0);
    const ca = await this.#ca(node.gateway_id, now);
    if (!current) {
      const issued = await issueNodeCertificate(
        ca,
        { name: node.name, host: hb.peerHost, publicKey },
        now,
        this.#d.validityMs,
      );
      certPem = issued.certPem;
      await saveNodeCertificate(this.#d.db, node.id, {
        tls_public_key: publicKey,
        tls_cert: certPem,
        tls_cert_host: hb.peerHost,
        tls_cert_renew_at: issued.renewAt,
      });
      this.#d.log.info(
        { node: node.name, host: hb.peerHost, expiresAt: new Date(issued.notAfter).toISOString() },
        'node certificate issued by the gateway CA',
      );
    }
    if (certPem === null || hb.encryption?.certificate?.fingerprint === fingerprint(certPem)) return {};
    return { certificate: certPem, ca: ca.certPem };
  }

  async #ca(gatewayId: string, now: number): Promise<GatewayCa> {
    const { db, masterKey } = this.#d;
    let stored = await readGatewayCa(db, gatewayId);
    if (!stored) {
      const gw = await findGateway(db, gatewayId);
      const made = await createGatewayCa(gw?.name ?? gatewayId, now);
      stored = await saveGatewayCa(db, gatewayId, {
        cert: made.certPem,
        keySealed: seal(masterKey, made.keyPem),
      });
      this.#d.log.info({ gateway: gw?.name }, 'gateway CA made for node-to-node TLS');
    }
    return { certPem: stored.cert, keyPem: unseal(masterKey, stored.keySealed) };
  }
}

/**
 * Node -> node messages on the peer port (default 8060). Every /v1 request is signed with the
 * sender's own Ed25519 key (protocol/node-keys.ts) over its method, path, time, a nonce, the sender's
 * and the recipient's node ids, the gateway id and the body's sha256, all carried in headers. The
 * recipient believes it only from a current member of its gateway: a node listed, with that public
 * key, in the peers of its own latest heartbeat. A deleted node drops out of that list within a
 * heartbeat, so its key stops working without anything to rotate. A request older (or newer) than
 * PEER_CLOCK_SKEW_MS is refused, and a nonce is accepted once within that window (no replays).
 */
import { createHash, createPrivateKey, randomBytes, sign, verify, type KeyObject } from 'node:crypto';
import { Type, type Static } from 'typebox';
import { AssignedAttempt } from './agent.ts';

export const PEER_CLOCK_SKEW_MS = 60_000;
export const PEER_HEADER_GATEWAY = 'x-ferry-gateway';
/** The sender's node id. */
export const PEER_HEADER_NODE = 'x-ferry-node';
/** The recipient's node id: a request signed for one node is refused by every other. */
export const PEER_HEADER_TO = 'x-ferry-to';
export const PEER_HEADER_TIME = 'x-ferry-time';
/** 16 random bytes, hex: remembered by the recipient for the clock-skew window. */
export const PEER_HEADER_NONCE = 'x-ferry-nonce';
/** sha256 of the body, hex (of the empty string when there is none). */
export const PEER_HEADER_BODY_SHA256 = 'x-ferry-body-sha256';
/** Ed25519 signature of peerSigningText, base64. */
export const PEER_HEADER_SIGNATURE = 'x-ferry-signature';

export const NONCE_PATTERN = /^[0-9a-f]{32}$/;
export const SHA256_PATTERN = /^[0-9a-f]{64}$/;

export const DispatchRequest = Type.Object({
  /** The dispatcher epoch the attempt was claimed under. */
  epoch: Type.Integer(),
  attempt: AssignedAttempt,
  /**
   * The service's lease token for the sender (protocol/dispatcher-lease.ts): a worker takes a
   * dispatch only from the node the service names dispatcher for this epoch.
   */
  lease: Type.Optional(Type.String({ maxLength: 4096 })),
});

export const DispatchResponse = Type.Object({ accepted: Type.Boolean() });

export const PingResponse = Type.Object({
  nodeId: Type.String(),
  name: Type.String(),
  gatewayId: Type.String(),
  running: Type.Integer(),
  limit: Type.Integer(),
  draining: Type.Boolean(),
});

export type DispatchRequestT = Static<typeof DispatchRequest>;
export type PingResponseT = Static<typeof PingResponse>;

/** What a peer request's signature covers. */
export interface PeerSigned {
  method: string;
  path: string;
  time: number;
  nonce: string;
  /** Sender. */
  nodeId: string;
  /** Recipient. */
  toNodeId: string;
  gatewayId: string;
  bodySha256: string;
}

export function bodySha256(body: string | Buffer): string {
  return createHash('sha256').update(body).digest('hex');
}

export function peerSigningText(s: PeerSigned): string {
  return [
    'ferry-peer-v1',
    s.method.toUpperCase(),
    s.path,
    String(s.time),
    s.nonce,
    s.nodeId,
    s.toNodeId,
    s.gatewayId,
    s.bodySha256,
  ].join('\n');
}

export function signPeerRequest(privateKey: KeyObject, s: PeerSigned): string {
  return sign(null, Buffer.from(peerSigningText(s)), privateKey).toString('base64');
}

export function verifyPeerRequest(publicKey: KeyObject, s: PeerSigned, signature: string): boolean {
  const sig = Buffer.from(signature, 'base64');
  if (sig.length !== 64) return false;
  try {
    return verify(null, Buffer.from(peerSigningText(s)), publicKey, sig);
  } catch {
    return false;
  }
}

/** A node's signing key from node.json (base64 PKCS#8 DER). */
export function signingKey(pkcs8Base64: string): KeyObject {
  return createPrivateKey({ key: Buffer.from(pkcs8Base64, 'base64'), format: 'der', type: 'pkcs8' });
}

/** The headers of a request signed by `from` for `to`; `time` and `nonce` are fresh unless given. */
export function peerHeaders(
  privateKey: KeyObject,
  r: {
    method: string;
    path: string;
    gatewayId: string;
    nodeId: string;
    toNodeId: string;
    body: string;
    time?: number;
    nonce?: string;
  },
): Record<string, string> {
  const s: PeerSigned = {
    method: r.method,
    path: r.path,
    time: r.time ?? Date.now(),
    nonce: r.nonce ?? randomBytes(16).toString('hex'),
    nodeId: r.nodeId,
    toNodeId: r.toNodeId,
    gatewayId: r.gatewayId,
    bodySha256: bodySha256(r.body),
  };
  return {
    [PEER_HEADER_GATEWAY]: s.gatewayId,
    [PEER_HEADER_NODE]: s.nodeId,
    [PEER_HEADER_TO]: s.toNodeId,
    [PEER_HEADER_TIME]: String(s.time),
    [PEER_HEADER_NONCE]: s.nonce,
    [PEER_HEADER_BODY_SHA256]: s.bodySha256,
    [PEER_HEADER_SIGNATURE]: signPeerRequest(privateKey, s),
  };
}

/**
 * The dispatcher lease token: the service's word that a node is the dispatcher of its gateway under
 * an epoch. The service signs {gatewayId, dispatcherNodeId, epoch, issuedAt} with an Ed25519 key
 * derived from its master key (so every replica signs with the same key, and the key survives
 * restarts); the dispatcher gets its token in each heartbeat answer and forwards it in every
 * dispatch; a worker believes a dispatch (and a higher epoch) only with a token that verifies under
 * the service's public key (sent to every node in every heartbeat answer), names its gateway, the
 * sending node and the dispatch's epoch. A peer alone can never raise a worker's epoch.
 *
 * Token: base64url(JSON claims) "." base64url(signature over the first part).
 */
import { createPrivateKey, createPublicKey, hkdfSync, sign, verify, type KeyObject } from 'node:crypto';

export interface LeaseClaims {
  gatewayId: string;
  dispatcherNodeId: string;
  epoch: number;
  issuedAt: number;
}

export interface LeaseKey {
  privateKey: KeyObject;
  /** base64 SPKI DER, as node keys travel. */
  publicKeyText: string;
}

/** PKCS#8 DER of an Ed25519 private key is this prefix followed by the 32-byte seed. */
const ED25519_PKCS8_PREFIX = Buffer.from('302e020100300506032b657004220420', 'hex');

/** The service's lease signing key, derived deterministically from its 32-byte master key. */
export function deriveLeaseKey(masterKey: Buffer): LeaseKey {
  const seed = Buffer.from(hkdfSync('sha256', masterKey, Buffer.alloc(0), 'ferry dispatcher lease', 32));
  const privateKey = createPrivateKey({
    key: Buffer.concat([ED25519_PKCS8_PREFIX, seed]),
    format: 'der',
    type: 'pkcs8',
  });
  const publicKeyText = createPublicKey(privateKey)
    .export({ format: 'der', type: 'spki' })
    .toString('base64');
  return { privateKey, publicKeyText };
}

/** A token signed by the service: base64url(JSON claims) "." base64url(signature over the first part). */
export function signToken(key: KeyObject, claims: object): string {
  const payload = Buffer.from(JSON.stringify(claims)).toString('base64url');
  return `${payload}.${sign(null, Buffer.from(payload), key).toString('base64url')}`;
}

/** A token's claims (not yet checked for their shape) when its signature verifies, else undefined. */
export function verifyToken(token: string, publicKey: KeyObject): unknown {
  const dot = token.indexOf('.');
  if (dot <= 0 || token.length > 4096) return undefined;
  const payload = token.slice(0, dot);
  const signature = Buffer.from(token.slice(dot + 1), 'base64url');
  if (signature.length !== 64) return undefined;
  try {
    if (!verify(null, Buffer.from(payload), publicKey, signature)) return undefined;
    return JSON.parse(Buffer.from(payload, 'base64url').toString('utf8')) as unknown;
  } catch {
    return undefined;
  }
}

export function signLease(key: KeyObject, claims: LeaseClaims): string {
  return signToken(key, claims);
}

/** The token's claims when its signature verifies under `publicKey`, else undefined. */
export function verifyLease(token: string, publicKey: KeyObject): LeaseClaims | undefined {
  const c = verifyToken(token, publicKey) as Partial<LeaseClaims> | undefined;
  if (
    typeof c?.gatewayId !== 'string' ||
    typeof c.dispatcherNodeId !== 'string' ||
    !Number.isSafeInteger(c.epoch) ||
    !Number.isSafeInteger(c.issuedAt)
  )
    return undefined;
  return c as LeaseClaims;
}

/** Does `token` make `senderNodeId` the dispatcher of `gatewayId` under `epoch`? */
export function leaseVouches(
  token: string | undefined,
  publicKey: KeyObject | undefined,
  expect: { gatewayId: string; senderNodeId: string; epoch: number },
): boolean {
  if (token === undefined || publicKey === undefined) return false;
  const c = verifyLease(token, publicKey);
  return (
    c !== undefined &&
    c.gatewayId === expect.gatewayId &&
    c.dispatcherNodeId === expect.senderNodeId &&
    c.epoch === expect.epoch
  );
}

/**
 * A node's own key pairs, made on the node and never sent anywhere but their public halves: an
 * Ed25519 key that signs its node-to-node requests (peers believe a request only from a member of
 * their gateway, as the service lists them), and an X25519 key that the service seals a task's secret
 * values to (only that node can open them). Public keys travel as base64 of their SPKI DER encoding.
 */
import { createPublicKey, generateKeyPairSync, type KeyObject } from 'node:crypto';
import { Type } from 'typebox';
import { FerryError } from '../common/errors.ts';

export interface NodeKeys {
  /** base64 PKCS#8 DER */
  signPrivateKey: string;
  signPublicKey: string;
  sealPrivateKey: string;
  sealPublicKey: string;
}

/** An SPKI DER public key in base64: an Ed25519 or X25519 one is 44 bytes (60 characters). */
export const PublicKeyText = Type.String({
  minLength: 16,
  maxLength: 128,
  pattern: '^[A-Za-z0-9+/]+={0,2}$',
});

export function generateNodeKeys(): NodeKeys {
  const sign = generateKeyPairSync('ed25519');
  const seal = generateKeyPairSync('x25519');
  const der = (k: KeyObject, type: 'spki' | 'pkcs8'): string =>
    k.export({ format: 'der', type }).toString('base64');
  return {
    signPrivateKey: der(sign.privateKey, 'pkcs8'),
    signPublicKey: der(sign.publicKey, 'spki'),
    sealPrivateKey: der(seal.privateKey, 'pkcs8'),
    sealPublicKey: der(seal.publicKey, 'spki'),
  };
}

/** Parses a public key of the given kind, or says clearly what is wrong with it. */
export function parsePublicKey(text: string, kind: 'ed25519' | 'x25519', field: string): KeyObject {
  let key: KeyObject;
  try {
    key = createPublicKey({ key: Buffer.from(text, 'base64'), format: 'der', type: 'spki' });
  } catch {
    throw new FerryError('bad_request', `${field} is not a public key (base64 SPKI DER expected)`);
  }
  if (key.asymmetricKeyType !== kind) {
    throw new FerryError(
      'bad_request',
      `${field} must be an ${kind} key, not ${key.asymmetricKeyType ?? 'unknown'}`,
    );
  }
  return key;
}

/**
 * A task's secret values (a linked service's password, key, connection string) travel sealed to the
 * one node that runs the attempt, so no hop in between can read them: not the service -> dispatcher
 * claim response, not the dispatcher -> worker dispatch, whether or not either is TLS.
 *
 * The service seals to the worker's X25519 public key (protocol/node-keys.ts): a fresh ephemeral
 * X25519 key pair per box, ECDH, HKDF-SHA256 over the shared secret (salted with both public keys)
 * into an AES-256-GCM key, and the attempt id and endpoint ("source" or "sink") as additional
 * authenticated data, so a box opens only for the attempt and the endpoint it was made for: it
 * cannot be replayed into another attempt, or swapped between source and sink.
 *
 * Box, as text: `x25519-aes256gcm.` + base64url(ephemeral public key (32) | iv (12) | tag (16) | ciphertext).
 */
import {
  createCipheriv,
  createDecipheriv,
  createPrivateKey,
  createPublicKey,
  diffieHellman,
  generateKeyPairSync,
  hkdfSync,
  randomBytes,
  type KeyObject,
} from 'node:crypto';
import { FerryError } from '../common/errors.ts';

const PREFIX = 'x25519-aes256gcm.';
const INFO = Buffer.from('ferry task secrets v1');
/** The DER prefix of an X25519 SPKI public key; the raw 32-byte key follows it. */
const X25519_SPKI_PREFIX = Buffer.from('302a300506032b656e032100', 'hex');

/**
 * What a box is for, bound into it with its id: an attempt's source or sink; 'test', a linked
 * service's connection test (its id `ct_...` stands in for the attempt id); and the gateway's
 * credentials (protocol/credentials.ts): 'credential', values set by an operator and sealed to the
 * gateway key; 'credential-copy', an entry copied to one node; 'gateway-key', the gateway's
 * private key handed to one node.
 */
export type SecretEndpoint = 'source' | 'sink' | 'test' | 'credential' | 'credential-copy' | 'gateway-key';

function rawPublic(key: KeyObject): Buffer {
  return key.export({ format: 'der', type: 'spki' }).subarray(X25519_SPKI_PREFIX.length);
}

function boxKey(shared: Buffer, ephemeral: Buffer, recipient: Buffer): Buffer {
  return Buffer.from(hkdfSync('sha256', shared, Buffer.concat([ephemeral, recipient]), INFO, 32));
}

function aad(attemptId: string, endpoint: SecretEndpoint): Buffer {
  return Buffer.from(`ferry-task-secrets\n${attemptId}\n${endpoint}`);
}

/** Seals `secrets` to the node whose X25519 public key (base64 SPKI DER) is `sealPublicKey`. */
export function sealSecrets(
  sealPublicKey: string,
  secrets: Record<string, unknown>,
  attemptId: string,
  endpoint: SecretEndpoint,
): string {
  const recipient = createPublicKey({
    key: Buffer.from(sealPublicKey, 'base64'),
    format: 'der',
    type: 'spki',
  });
  if (recipient.asymmetricKeyType !== 'x25519')
    throw new FerryError('internal', 'the node seal key is not an X25519 key');
  const ephemeral = generateKeyPairSync('x25519');
  const ephemeralRaw = rawPublic(ephemeral.publicKey);
  const shared = diffieHellman({ privateKey: ephemeral.privateKey, publicKey: recipient });
  const key = boxKey(shared, ephemeralRaw, rawPublic(recipient));
  const iv = randomBytes(12);
  const cipher = createCipheriv('aes-256-gcm', key, iv);
  cipher.setAAD(aad(attemptId, endpoint));
  const body = Buffer.concat([cipher.update(JSON.stringify(secrets), 'utf8'), cipher.final()]);
  return PREFIX + Buffer.concat([ephemeralRaw, iv, cipher.getAuthTag(), body]).toString('base64url');
}

/**
 * Opens a box with the node's X25519 private key (base64 PKCS#8 DER). Fails, without saying anything
 * about the contents, if it was sealed to another key or for another attempt or endpoint, or altered.
 */
export function openSecrets(
  sealPrivateKey: string,
  box: string,
  attemptId: string,
  endpoint: SecretEndpoint,
): Record<string, unknown> {
  // No cause is kept: a parse error's message could quote what was opened.
  const refuse = (why: string): FerryError =>
    new FerryError('internal', `the ${endpoint}'s secrets cannot be opened on this node: ${why}`, {
      // Another attempt (sealed anew, maybe to another node) may still run the task.
      retryable: true,
      hint: "a node's seal key is in its node.json; the service seals to the key the node last sent in a heartbeat",
    });
  if (!box.startsWith(PREFIX)) throw refuse('unknown sealing format');
  const raw = Buffer.from(box.slice(PREFIX.length), 'base64url');
  if (raw.length < 32 + 12 + 16) throw refuse('the sealed value is truncated');
  let opened: unknown;
  try {
    const privateKey = createPrivateKey({
      key: Buffer.from(sealPrivateKey, 'base64'),
      format: 'der',
      type: 'pkcs8',
    });
    const ephemeralRaw = raw.subarray(0, 32);
    const ephemeral = createPublicKey({
      key: Buffer.concat([X25519_SPKI_PREFIX, ephemeralRaw]),
      format: 'der',
      type: 'spki',
    });
    const shared = diffieHellman({ privateKey, publicKey: ephemeral });
    const key = boxKey(shared, ephemeralRaw, rawPublic(createPublicKey(privateKey)));
    const decipher = createDecipheriv('aes-256-gcm', key, raw.subarray(32, 44));
    decipher.setAAD(aad(attemptId, endpoint));
    decipher.setAuthTag(raw.subarray(44, 60));
    opened = JSON.parse(
      Buffer.concat([decipher.update(raw.subarray(60)), decipher.final()]).toString('utf8'),
    );
  } catch {
    throw refuse('it was sealed to another node, for another attempt, or altered on the way');
  }
  if (typeof opened !== 'object' || opened === null || Array.isArray(opened))
    throw refuse('the sealed value is not an object');
  return opened as Record<string, unknown>;
}

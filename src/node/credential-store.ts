/**
 * The node's copy of its gateway's credentials (protocol/credentials.ts): the gateway's key pair and,
 * per linked service, the latest version of its secret values. Kept in the data dir encrypted at rest:
 * credentials.enc, AES-256-GCM with the 32-byte key in credentials.key, both mode 0600, written
 * atomically (a crash leaves the old file or the new one, never half of one).
 *
 * An entry is replaced only by a higher version, so an old box replayed, or a slow push overtaken by
 * a newer one, changes nothing.
 */
import { existsSync, mkdirSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { createPrivateKey, createPublicKey, generateKeyPairSync, randomBytes } from 'node:crypto';
import { seal, unseal } from '../common/crypto.ts';
import { FerryError } from '../common/errors.ts';
import type { BoundCredential, NodeCredentialsT } from '../protocol/credentials.ts';

export interface GatewayKeyPair {
  /** base64 SPKI DER (X25519) */
  publicKey: string;
  /** base64 PKCS#8 DER */
  privateKey: string;
}

export interface CredentialEntry {
  version: number;
  values: Record<string, unknown>;
  /** The endpoint the values were set for (protocol/credentials.ts BoundCredential). */
  endpoint: BoundCredential['endpoint'];
}

/** What credentials.enc holds, opened (also what a node backup carries). */
export interface CredentialSet {
  gatewayKey: GatewayKeyPair | null;
  entries: Record<string, CredentialEntry>;
}

export const CREDENTIALS_FILE = 'credentials.enc';
export const CREDENTIALS_KEY_FILE = 'credentials.key';

export function newGatewayKeyPair(): GatewayKeyPair {
  const k = generateKeyPairSync('x25519');
  return {
    publicKey: k.publicKey.export({ format: 'der', type: 'spki' }).toString('base64'),
    privateKey: k.privateKey.export({ format: 'der', type: 'pkcs8' }).toString('base64'),
  };
}

/** The public half of a gateway private key (to check a key handed over is the gateway's). */
export function publicOf(privateKey: string): string {
  return createPublicKey(
    createPrivateKey({ key: Buffer.from(privateKey, 'base64'), format: 'der', type: 'pkcs8' }),
  )
    .export({ format: 'der', type: 'spki' })
    .toString('base64');
}

function writeSecretFile(file: string, data: string | Buffer): void {
  writeFileSync(`${file}.tmp`, data, { mode: 0o600 });
  renameSync(`${file}.tmp`, file);
}

/** Reads the data dir's credential set (empty if there is none yet). */
export function readCredentialSet(dataDir: string): CredentialSet {
  const file = join(dataDir, CREDENTIALS_FILE);
  const keyFile = join(dataDir, CREDENTIALS_KEY_FILE);
  if (!existsSync(file)) return { gatewayKey: null, entries: {} };
  if (!existsSync(keyFile))
    throw new FerryError('internal', `${file} exists but its key ${keyFile} is missing`, {
      hint: 'restore the data dir from a backup (`ferry node restore`), or let the dispatcher resend the credentials after moving credentials.enc away',
    });
  const key = readFileSync(keyFile);
  if (key.length !== 32) throw new FerryError('internal', `${keyFile} is not a 32-byte key`);
  let text: string;
  try {
    text = unseal(key, readFileSync(file, 'utf8'));
  } catch {
    throw new FerryError('internal', `${file} cannot be decrypted with ${keyFile}`, {
      hint: 'the two files belong together: restore both from a backup (`ferry node restore`)',
    });
  }
  const set = JSON.parse(text) as CredentialSet;
  return { gatewayKey: set.gatewayKey ?? null, entries: set.entries ?? {} };
}

/** Writes the set encrypted with the data dir's key (made on first use). */
export function writeCredentialSet(dataDir: string, set: CredentialSet): void {
  mkdirSync(dataDir, { recursive: true });
  const keyFile = join(dataDir, CREDENTIALS_KEY_FILE);
  let key: Buffer;
  if (existsSync(keyFile)) key = readFileSync(keyFile);
  else {
    key = randomBytes(32);
    writeSecretFile(keyFile, key);
  }
  writeSecretFile(join(dataDir, CREDENTIALS_FILE), seal(key, JSON.stringify(set)));
}

export class CredentialStore {
  readonly #dataDir: string;
  #set: CredentialSet;

  constructor(dataDir: string) {
    this.#dataDir = dataDir;
    this.#set = readCredentialSet(dataDir);
  }

  get gatewayKey(): GatewayKeyPair | null {
    return this.#set.gatewayKey;
  }

  /** What this node reports in its heartbeat. */
  held(): NodeCredentialsT {
    const versions: Record<string, number> = {};
    for (const [name, e] of Object.entries(this.#set.entries)) versions[name] = e.version;
    return { gatewayKey: this.#set.gatewayKey?.publicKey ?? null, versions };
  }

  version(linkedService: string): number {
    return this.#set.entries[linkedService]?.version ?? 0;
  }

  get(linkedService: string): CredentialEntry | undefined {
    return this.#set.entries[linkedService];
  }

  names(): string[] {
    return Object.keys(this.#set.entries);
  }

  /** Keeps `values` as `version` if it is newer than what is held; says whether it was. */
  put(linkedService: string, version: number, bound: BoundCredential): boolean {
    if (version <= this.version(linkedService)) return false;
    const entry: CredentialEntry = { version, values: bound.values, endpoint: bound.endpoint };
    this.#save({ ...this.#set, entries: { ...this.#set.entries, [linkedService]: entry } });
    return true;
  }

  /** Takes the gateway's key pair (made here, or handed over by a peer). */
  setGatewayKey(pair: GatewayKeyPair): void {
    if (publicOf(pair.privateKey) !== pair.publicKey)
      throw new FerryError('bad_request', 'the gateway key handed over does not match its public half');
    this.#save({ ...this.#set, gatewayKey: pair });
  }

  #save(next: CredentialSet): void {
    writeCredentialSet(this.#dataDir, next);
    this.#set = next;
  }
}

/** Removes the data dir's credential set and its key (a data dir registering anew). */
export function removeCredentialSet(dataDir: string): void {
  rmSync(join(dataDir, CREDENTIALS_FILE), { force: true });
  rmSync(join(dataDir, CREDENTIALS_KEY_FILE), { force: true });
}

/**
 * `ferry node backup` / `ferry node restore`: a node's identity (node.json: its id, token, key pairs
 * and settings), the gateway's credential key pair and its credential set, in one password-protected
 * file, and back into a data dir, so that a node rebuilt on a new machine runs as the same node with
 * the same credentials (the seed's "back up the certificate").
 *
 * File: JSON {format, kdf: scrypt(N, r, p, salt), iv, tag, data}: the contents encrypted with
 * AES-256-GCM under the key scrypt derives from the password. A wrong password, or a file altered in
 * any byte, fails the tag check: nothing is written.
 */
import { createCipheriv, createDecipheriv, randomBytes, scryptSync } from 'node:crypto';
import { existsSync } from 'node:fs';
import { FerryError } from '../common/errors.ts';
import {
  readRegistration,
  registrationFile,
  writeRegistration,
  type NodeRegistration,
} from './node-state.ts';
import { readCredentialSet, writeCredentialSet, type CredentialSet } from './credential-store.ts';

const FORMAT = 'ferry-node-backup-v1';
/** scrypt cost: about 0.1 s and 32 MiB here, per try of a password. */
const KDF = { N: 2 ** 15, r: 8, p: 1 };
export const MIN_PASSWORD_LENGTH = 8;

interface BackupFile {
  format: string;
  kdf: { name: 'scrypt'; N: number; r: number; p: number; salt: string };
  iv: string;
  tag: string;
  data: string;
}

interface BackupContents {
  registration: NodeRegistration;
  credentials: CredentialSet;
}

function deriveKey(password: string, salt: Buffer, k: { N: number; r: number; p: number }): Buffer {
  return scryptSync(password, salt, 32, { ...k, maxmem: 256 * k.N * k.r });
}

function checkPassword(password: string): void {
  if (password.length < MIN_PASSWORD_LENGTH)
    throw new FerryError(
      'bad_request',
      `the backup password must have at least ${MIN_PASSWORD_LENGTH} characters`,
    );
}

/** The data dir's node, sealed with `password`. */
export function createBackup(dataDir: string, password: string): string {
  checkPassword(password);
  const registration = readRegistration(dataDir);
  if (!registration)
    throw new FerryError('not_found', `no node is registered in ${dataDir}`, {
      hint: 'give the data dir of a registered node with --data-dir',
    });
  const contents: BackupContents = { registration, credentials: readCredentialSet(dataDir) };
  const salt = randomBytes(16);
  const iv = randomBytes(12);
  const cipher = createCipheriv('aes-256-gcm', deriveKey(password, salt, KDF), iv);
  cipher.setAAD(Buffer.from(FORMAT));
  const data = Buffer.concat([cipher.update(JSON.stringify(contents), 'utf8'), cipher.final()]);
  const file: BackupFile = {
    format: FORMAT,
    kdf: { name: 'scrypt', ...KDF, salt: salt.toString('base64') },
    iv: iv.toString('base64'),
    tag: cipher.getAuthTag().toString('base64'),
    data: data.toString('base64'),
  };
  return `${JSON.stringify(file, null, 2)}\n`;
}

/** Opens a backup; throws (writing nothing) on a wrong password or a damaged file. */
export function openBackup(text: string, password: string): BackupContents {
  let file: BackupFile;
  try {
    file = JSON.parse(text) as BackupFile;
  } catch {
    throw new FerryError('bad_request', 'this is not a Ferry node backup (not JSON)');
  }
  if (file.format !== FORMAT || file.kdf?.name !== 'scrypt')
    throw new FerryError('bad_request', `this is not a Ferry node backup (format ${String(file.format)})`);
  const { N, r, p } = file.kdf;
  if (![N, r, p].every((x) => Number.isSafeInteger(x) && x > 0) || N > 2 ** 20 || r > 32 || p > 16)
    throw new FerryError('bad_request', 'the backup names key-derivation settings out of range');
  let opened: string;
  try {
    const decipher = createDecipheriv(
      'aes-256-gcm',
      deriveKey(password, Buffer.from(file.kdf.salt, 'base64'), { N, r, p }),
      Buffer.from(file.iv, 'base64'),
    );
    decipher.setAAD(Buffer.from(FORMAT));
    decipher.setAuthTag(Buffer.from(file.tag, 'base64'));
    opened = Buffer.concat([decipher.update(Buffer.from(file.data, 'base64')), decipher.final()]).toString(
      'utf8',
    );
  } catch {
    throw new FerryError(
      'unauthorized',
      'the backup cannot be opened with this password (or it was altered)',
      {
        hint: 'give the password the backup was made with (--password-file or FERRY_BACKUP_PASSWORD)',
      },
    );
  }
  return JSON.parse(opened) as BackupContents;
}

/** Writes a backup's node into `dataDir`; refuses a data dir that holds a node unless `force`. */
export function restoreBackup(
  text: string,
  password: string,
  dataDir: string,
  force: boolean,
): NodeRegistration {
  const contents = openBackup(text, password);
  if (existsSync(registrationFile(dataDir)) && !force)
    throw new FerryError('conflict', `${dataDir} already holds a node`, {
      hint: 'restore into an empty data dir, or add --force to replace that node',
    });
  writeCredentialSet(dataDir, contents.credentials);
  writeRegistration(dataDir, contents.registration);
  return contents.registration;
}

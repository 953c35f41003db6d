/**
 * What a node keeps in its data dir: its registration (node.json, mode 0600), with the port, listen
 * and advertise addresses it last ran with. A restart with the same data dir is the same node, on
 * the same addresses unless flags say otherwise; a data dir registered to one gateway refuses
 * another's key.
 */
import { existsSync, mkdirSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { FerryError } from '../common/errors.ts';
import type { NodeKeys } from '../protocol/node-keys.ts';

export interface NodeRegistration {
  serviceUrl: string;
  nodeId: string;
  nodeName: string;
  nodeToken: string;
  gatewayId: string;
  gatewayName: string;
  /** Written by older versions (a gateway-wide secret); no longer used: peers sign with `keys`. */
  peerSecret?: string;
  registeredAt: string;
  /** The node's own key pairs (made on the node; only the public halves leave it). */
  keys?: NodeKeys;
  /** What the node last ran with (as asked: port 0 stays "any free port"); older versions lack it. */
  settings?: NodeSettings;
}

/** The options a restart without flags takes from the data dir (the name is `nodeName`). */
export interface NodeSettings {
  port: number;
  listen: string;
  advertise: string;
}

export function registrationFile(dataDir: string): string {
  return join(dataDir, 'node.json');
}

export function readRegistration(dataDir: string): NodeRegistration | undefined {
  const file = registrationFile(dataDir);
  if (!existsSync(file)) return undefined;
  try {
    return JSON.parse(readFileSync(file, 'utf8')) as NodeRegistration;
  } catch (err) {
    throw new FerryError('internal', `${file} is damaged: ${(err as Error).message}`, {
      hint: 'restore it, or run `ferry node leave` and register again',
    });
  }
}

export function writeRegistration(dataDir: string, reg: NodeRegistration): void {
  mkdirSync(dataDir, { recursive: true });
  const file = registrationFile(dataDir);
  writeFileSync(`${file}.tmp`, JSON.stringify(reg, null, 2), { mode: 0o600 });
  renameSync(`${file}.tmp`, file);
}

export function removeRegistration(dataDir: string): void {
  rmSync(registrationFile(dataDir), { force: true });
}

/** The last status the running node saw, for `ferry node status` (written each heartbeat). */
export interface NodeLocalStatus {
  at: string;
  gateway: string;
  node: string;
  service: string;
  connected: boolean;
  lastError: string | null;
  role: string;
  status: string;
  statusHint: string;
  epoch: number;
  running: number;
  limit: number;
  draining: boolean;
  pid: number;
  peerUrl: string;
}

export function statusFile(dataDir: string): string {
  return join(dataDir, 'status.json');
}

export function writeLocalStatus(dataDir: string, s: NodeLocalStatus): void {
  const file = statusFile(dataDir);
  writeFileSync(`${file}.tmp`, JSON.stringify(s, null, 2));
  renameSync(`${file}.tmp`, file);
}

export function readLocalStatus(dataDir: string): NodeLocalStatus | undefined {
  const file = statusFile(dataDir);
  if (!existsSync(file)) return undefined;
  try {
    return JSON.parse(readFileSync(file, 'utf8')) as NodeLocalStatus;
  } catch {
    return undefined;
  }
}

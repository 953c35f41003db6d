/**
 * Calling a node's peer port as a peer would (or as an attacker would): a node's registration read
 * from its node.json, requests signed with any Ed25519 key, and dispatcher lease tokens minted with
 * the service's lease key (derived from the master key in the service's data dir).
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { generateKeyPairSync, type KeyObject } from 'node:crypto';
import { eventually } from './cluster.ts';
import { peerHeaders, signingKey, type DispatchRequestT } from '../../src/protocol/peer.ts';
import { deriveLeaseKey, signLease, type LeaseClaims } from '../../src/protocol/dispatcher-lease.ts';

export interface Registration {
  nodeId: string;
  nodeName: string;
  nodeToken: string;
  gatewayId: string;
  gatewayName: string;
  keys: { signPrivateKey: string; signPublicKey: string };
}

export function registrationOf(dataDir: string): Registration {
  return JSON.parse(readFileSync(join(dataDir, 'node.json'), 'utf8')) as Registration;
}

export function keyOf(reg: Registration): KeyObject {
  return signingKey(reg.keys.signPrivateKey);
}

export function strangerKey(): KeyObject {
  return generateKeyPairSync('ed25519').privateKey;
}

export interface LocalStatus {
  at: string;
  peerUrl: string;
  epoch: number;
  role: string;
}

export function statusOf(dataDir: string): LocalStatus {
  return JSON.parse(readFileSync(join(dataDir, 'status.json'), 'utf8')) as LocalStatus;
}

/** The node's peer URL, from the status.json it writes after each heartbeat. */
export async function peerUrlOf(dataDir: string): Promise<string> {
  return eventually(`${dataDir}/status.json with peerUrl`, () => statusOf(dataDir).peerUrl);
}

/** Resolves once the node has written status.json after a heartbeat that began after now. */
export async function nextHeartbeatOf(dataDir: string): Promise<void> {
  const after = Date.now() + 50;
  await eventually(`a heartbeat of ${dataDir}`, () => Date.parse(statusOf(dataDir).at) > after);
}

export interface Signer {
  key: KeyObject;
  gatewayId: string;
  nodeId: string;
  toNodeId: string;
  time?: number;
  nonce?: string;
  /** Sign this path / body instead of the ones sent. */
  signedPath?: string;
  signedBody?: string;
}

export interface PeerRequest {
  method: 'GET' | 'POST';
  path: string;
  headers: Record<string, string>;
  body: string | undefined;
}

/** The exact request (headers and body bytes) a peer would send; sign === undefined: unsigned. */
export function peerRequest(method: 'GET' | 'POST', path: string, body: unknown, sign?: Signer): PeerRequest {
  const text = body === undefined ? '' : typeof body === 'string' ? body : JSON.stringify(body);
  const headers: Record<string, string> = { 'content-type': 'application/json' };
  if (sign) {
    Object.assign(
      headers,
      peerHeaders(sign.key, {
        method,
        path: sign.signedPath ?? path,
        gatewayId: sign.gatewayId,
        nodeId: sign.nodeId,
        toNodeId: sign.toNodeId,
        body: sign.signedBody ?? text,
        ...(sign.time === undefined ? {} : { time: sign.time }),
        ...(sign.nonce === undefined ? {} : { nonce: sign.nonce }),
      }),
    );
  }
  return { method, path, headers, body: method === 'POST' ? text : undefined };
}

export async function send(base: string, r: PeerRequest): Promise<{ status: number; body: any }> {
  const res = await fetch(`${base}${r.path}`, {
    method: r.method,
    headers: r.headers,
    ...(r.body === undefined ? {} : { body: r.body }),
  });
  const out = await res.text();
  return { status: res.status, body: out ? JSON.parse(out) : undefined };
}

export async function peerCall(
  base: string,
  method: 'GET' | 'POST',
  path: string,
  body: unknown,
  sign?: Signer,
): Promise<{ status: number; body: any }> {
  return send(base, peerRequest(method, path, body, sign));
}

/** A lease token as the service of `serviceDataDir` would sign it. */
export function mintLease(serviceDataDir: string, claims: Omit<LeaseClaims, 'issuedAt'>): string {
  const master = Buffer.from(readFileSync(join(serviceDataDir, 'master.key'), 'utf8').trim(), 'base64');
  return signLease(deriveLeaseKey(master).privateKey, { ...claims, issuedAt: Date.now() });
}

/** A syntactically valid dispatch of a plan task (over a folder that does not exist) to `nodeId`. */
export function planDispatch(
  nodeId: string,
  epoch: number,
  attemptId: string,
  lease?: string,
): DispatchRequestT {
  const endpoint = (name: string) => ({
    type: 'filesystem',
    linkedService: name,
    properties: { root: '/nonexistent/ferry-peer-auth-test' },
    options: { linkedService: name },
  });
  return {
    epoch,
    attempt: {
      attemptId,
      taskId: `task_${attemptId}`,
      nodeId,
      epoch,
      queuedAt: Date.now(),
      spec: {
        runId: 'run_peer_auth_test',
        activity: 'copy',
        source: endpoint('src'),
        sink: endpoint('dst'),
        work: { kind: 'plan' },
      },
    },
    ...(lease === undefined ? {} : { lease }),
  };
}

/**
 * Node -> node messages on the peer port (default 8060). Every request is signed with the gateway's
 * peer secret (HMAC-SHA256 over method, path, timestamp and body digest), so a node only accepts work
 * from nodes of its own gateway; a request older than PEER_CLOCK_SKEW_MS is refused (replay window).
 */
import { createHmac, createHash, timingSafeEqual } from 'node:crypto';
import { Type, type Static } from 'typebox';
import { AssignedAttempt } from './agent.ts';

export const PEER_CLOCK_SKEW_MS = 60_000;
export const PEER_HEADER_GATEWAY = 'x-ferry-gateway';
export const PEER_HEADER_NODE = 'x-ferry-node';
export const PEER_HEADER_TIME = 'x-ferry-time';
export const PEER_HEADER_SIGNATURE = 'x-ferry-signature';

export const DispatchRequest = Type.Object({
  /** The dispatcher epoch the attempt was claimed under. */
  epoch: Type.Integer(),
  attempt: AssignedAttempt,
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

export function signPeerRequest(
  secret: string,
  method: string,
  path: string,
  time: number,
  body: string,
): string {
  const digest = createHash('sha256').update(body).digest('hex');
  return createHmac('sha256', secret)
    .update(`${method.toUpperCase()}\n${path}\n${time}\n${digest}`)
    .digest('hex');
}

export function verifyPeerSignature(
  secret: string,
  method: string,
  path: string,
  time: number,
  body: string,
  signature: string,
  now: number,
): boolean {
  if (!Number.isFinite(time) || Math.abs(now - time) > PEER_CLOCK_SKEW_MS) return false;
  const expected = Buffer.from(signPeerRequest(secret, method, path, time, body), 'hex');
  const given = Buffer.from(signature, 'hex');
  return given.length === expected.length && timingSafeEqual(given, expected);
}

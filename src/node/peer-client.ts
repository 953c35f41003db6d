/**
 * Signed calls to other nodes of the gateway: dispatch, ping. Each request is signed with this
 * node's own Ed25519 key for one recipient (protocol/peer.ts). TLS verified against --tls-ca.
 */
import { readFileSync } from 'node:fs';
import type { KeyObject } from 'node:crypto';
import { closeAgents, jsonAgents, requestJson, type JsonAgents, type JsonResponse } from './json-request.ts';
import { FerryError, describeSystemError, fromProblem } from '../common/errors.ts';
import { peerHeaders } from '../protocol/peer.ts';

export interface PeerIdentity {
  gatewayId: string;
  nodeId: string;
  signKey: KeyObject;
}

/** A peer to call: its node id (the signature names it) and its peer URL. */
export interface PeerTarget {
  nodeId: string;
  url: string;
}

export class PeerClient {
  readonly #agents: JsonAgents;
  readonly #identity: PeerIdentity;

  constructor(identity: PeerIdentity, tlsCa: string | undefined) {
    this.#identity = identity;
    this.#agents = jsonAgents({ maxSockets: 8, ca: tlsCa ? readFileSync(tlsCa) : undefined });
  }

  async call<T>(
    target: PeerTarget,
    method: 'GET' | 'POST',
    path: string,
    body: unknown,
    timeoutMs: number,
  ): Promise<T> {
    const id = this.#identity;
    const text = body === undefined ? '' : JSON.stringify(body);
    let res: JsonResponse;
    try {
      res = await requestJson(`${target.url}${path}`, {
        method,
        agents: this.#agents,
        // Signed per send: a request retried on a fresh socket carries a fresh nonce and time.
        headers: () => ({
          'content-type': 'application/json',
          ...peerHeaders(id.signKey, {
            method,
            path,
            gatewayId: id.gatewayId,
            nodeId: id.nodeId,
            toNodeId: target.nodeId,
            body: method === 'POST' ? text : '',
          }),
        }),
        body: method === 'POST' ? text : undefined,
        timeoutMs,
      });
    } catch (err) {
      if (err instanceof FerryError) throw err;
      const e = err as Error;
      throw new FerryError('unavailable', describeSystemError(e), { cause: err });
    }
    const parsed: unknown = res.text.length > 0 ? JSON.parse(res.text) : undefined;
    if (res.status >= 400) throw fromProblem(parsed, res.status);
    return parsed as T;
  }

  async close(): Promise<void> {
    closeAgents(this.#agents);
    return Promise.resolve();
  }
}

/** Signed calls to other nodes of the gateway: dispatch, ping, cancel. TLS verified against --tls-ca. */
import { readFileSync } from 'node:fs';
import { closeAgents, jsonAgents, requestJson, type JsonAgents, type JsonResponse } from './json-request.ts';
import { FerryError, describeSystemError, fromProblem } from '../common/errors.ts';
import {
  PEER_HEADER_GATEWAY,
  PEER_HEADER_NODE,
  PEER_HEADER_SIGNATURE,
  PEER_HEADER_TIME,
  signPeerRequest,
} from '../protocol/peer.ts';

export interface PeerIdentity {
  gatewayId: string;
  nodeId: string;
  peerSecret: string;
}

export class PeerClient {
  readonly #agents: JsonAgents;
  readonly #identity: () => PeerIdentity | undefined;

  constructor(identity: () => PeerIdentity | undefined, tlsCa: string | undefined) {
    this.#identity = identity;
    this.#agents = jsonAgents({ maxSockets: 8, ca: tlsCa ? readFileSync(tlsCa) : undefined });
  }

  async call<T>(
    baseUrl: string,
    method: 'GET' | 'POST',
    path: string,
    body: unknown,
    timeoutMs: number,
  ): Promise<T> {
    const id = this.#identity();
    if (!id) throw new FerryError('unavailable', 'not registered');
    const text = body === undefined ? '' : JSON.stringify(body);
    const time = Date.now();
    let res: JsonResponse;
    try {
      res = await requestJson(`${baseUrl}${path}`, {
        method,
        agents: this.#agents,
        headers: {
          'content-type': 'application/json',
          [PEER_HEADER_GATEWAY]: id.gatewayId,
          [PEER_HEADER_NODE]: id.nodeId,
          [PEER_HEADER_TIME]: String(time),
          [PEER_HEADER_SIGNATURE]: signPeerRequest(id.peerSecret, method, path, time, text),
        },
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

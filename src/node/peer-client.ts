/** Signed calls to other nodes of the gateway: dispatch, ping, cancel. TLS verified against --tls-ca. */
import { readFileSync } from 'node:fs';
import { Agent, request } from 'undici';
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
  readonly #agent: Agent;
  readonly #identity: () => PeerIdentity | undefined;

  constructor(identity: () => PeerIdentity | undefined, tlsCa: string | undefined) {
    this.#identity = identity;
    this.#agent = new Agent({
      keepAliveTimeout: 30_000,
      connections: 8,
      connect: { timeout: 2_000, ...(tlsCa ? { ca: readFileSync(tlsCa) } : {}) },
    });
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
    let res;
    try {
      res = await request(`${baseUrl}${path}`, {
        method,
        dispatcher: this.#agent,
        headers: {
          'content-type': 'application/json',
          [PEER_HEADER_GATEWAY]: id.gatewayId,
          [PEER_HEADER_NODE]: id.nodeId,
          [PEER_HEADER_TIME]: String(time),
          [PEER_HEADER_SIGNATURE]: signPeerRequest(id.peerSecret, method, path, time, text),
        },
        ...(method === 'POST' ? { body: text } : {}),
        headersTimeout: timeoutMs,
        bodyTimeout: timeoutMs,
        signal: AbortSignal.timeout(timeoutMs),
      });
    } catch (err) {
      const e = err as Error;
      const msg =
        e.name === 'TimeoutError' || e.name === 'AbortError' || /timeout/i.test(e.message)
          ? 'timed out'
          : describeSystemError((e.cause as Error | undefined) ?? e);
      throw new FerryError('unavailable', msg, { cause: err });
    }
    const out = await res.body.text();
    const parsed: unknown = out.length > 0 ? JSON.parse(out) : undefined;
    if (res.statusCode >= 400) throw fromProblem(parsed, res.statusCode);
    return parsed as T;
  }

  async close(): Promise<void> {
    await this.#agent.close();
  }
}

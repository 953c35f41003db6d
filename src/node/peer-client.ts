/**
 * Signed calls to other nodes of the gateway: dispatch, ping. Each request is signed with this
 * node's own Ed25519 key for one recipient (protocol/peer.ts). Over TLS when the node sends TLS
 * (node-tls.ts): the peer's certificate must chain to the node's CA bundle and name the address
 * called (every subjectAltName counts, wildcards too: Node's checkServerIdentity), and this node
 * presents its own certificate (mutual TLS). The peer URLs the service lists say http or https as
 * the peer last reported; this node's own transport decides.
 */
import type { KeyObject } from 'node:crypto';
import { closeAgents, jsonAgents, requestJson, type JsonAgents, type JsonResponse } from './json-request.ts';
import { FerryError, describeSystemError, fromProblem } from '../common/errors.ts';
import { peerHeaders } from '../protocol/peer.ts';
import type { PeerTlsMaterial } from './peer-server.ts';

/** An agent replaced by a rotated certificate is destroyed this long after (its requests end first). */
const RETIRE_AFTER_MS = 60_000;

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

/** A failed TLS handshake with a peer, said plainly; undefined for any other error. */
function peerTlsProblem(err: Error): string | undefined {
  const code = (err as NodeJS.ErrnoException).code ?? '';
  if (code === 'ERR_TLS_CERT_ALTNAME_INVALID')
    return `TLS: the peer's certificate is not valid for the address called (${err.message})`;
  if (/CERT|SELF_SIGNED|UNABLE_TO_VERIFY|UNABLE_TO_GET_ISSUER/.test(code))
    return `TLS: the peer's certificate is not trusted: ${err.message} (it must chain to the gateway's CA, or to --tls-ca)`;
  if (/alert (bad|unknown|certificate)|certificate required/i.test(err.message))
    return `TLS: the peer refused this node's certificate (${err.message})`;
  return undefined;
}

export class PeerClient {
  #agents: JsonAgents;
  readonly #retired = new Set<JsonAgents>();
  readonly #identity: PeerIdentity;
  readonly #sendsTls: () => boolean;

  constructor(
    identity: PeerIdentity,
    transport: { sendsTls(): boolean; material: PeerTlsMaterial | undefined },
  ) {
    this.#identity = identity;
    this.#sendsTls = () => transport.sendsTls();
    this.#agents = PeerClient.#agentsFor(transport.material);
  }

  static #agentsFor(m: PeerTlsMaterial | undefined): JsonAgents {
    return jsonAgents({ maxSockets: 8, ...(m ? { ca: m.ca, cert: m.cert, key: m.key } : {}) });
  }

  /** New requests present this certificate and trust this CA bundle; the old agents are retired. */
  setTls(m: PeerTlsMaterial): void {
    const old = this.#agents;
    this.#agents = PeerClient.#agentsFor(m);
    this.#retired.add(old);
    setTimeout(() => {
      this.#retired.delete(old);
      closeAgents(old);
    }, RETIRE_AFTER_MS).unref();
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
      const url = target.url.replace(/^https?:/, this.#sendsTls() ? 'https:' : 'http:');
      res = await requestJson(`${url}${path}`, {
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
      throw new FerryError('unavailable', peerTlsProblem(e) ?? describeSystemError(e), { cause: err });
    }
    const parsed: unknown = res.text.length > 0 ? JSON.parse(res.text) : undefined;
    if (res.status >= 400) throw fromProblem(parsed, res.status);
    return parsed as T;
  }

  async close(): Promise<void> {
    closeAgents(this.#agents);
    for (const a of this.#retired) closeAgents(a);
    this.#retired.clear();
    return Promise.resolve();
  }
}

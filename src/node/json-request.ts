/**
 * One JSON request over node:http(s) with a keep-alive agent: what the node's two clients (to the
 * service, to its peers) need, and no more. Node's own http module rather than the undici package:
 * undici costs a node ~28 MiB of memory once imported, a tenth of its 256 MiB budget, for features
 * these calls do not use.
 */
import http from 'node:http';
import https from 'node:https';
import { FerryError } from '../common/errors.ts';

export interface JsonAgents {
  http: http.Agent;
  https: https.Agent;
}

/** Keep-alive agents; `cert` and `key` make the https one present a client certificate (mutual TLS). */
export function jsonAgents(o: {
  maxSockets: number;
  ca?: Buffer | undefined;
  cert?: Buffer | undefined;
  key?: Buffer | undefined;
}): JsonAgents {
  const common = {
    keepAlive: true,
    keepAliveMsecs: 30_000,
    maxSockets: o.maxSockets,
    maxFreeSockets: o.maxSockets,
  };
  return {
    http: new http.Agent(common),
    https: new https.Agent({
      ...common,
      ...(o.ca ? { ca: o.ca } : {}),
      ...(o.cert && o.key ? { cert: o.cert, key: o.key } : {}),
    }),
  };
}

export function closeAgents(agents: JsonAgents): void {
  agents.http.destroy();
  agents.https.destroy();
}

export interface JsonResponse {
  status: number;
  text: string;
}

/**
 * Sends `body` (already JSON text, or undefined) and returns the status and body text. Fails with
 * the system error (ECONNREFUSED ...), an AbortError when `signal` aborts, or `unavailable` with
 * `timed out` when `timeoutMs` passes first.
 */
export function requestJson(
  url: string,
  o: {
    method: string;
    /** A function is called for each send: a retried request gets fresh headers (a new nonce). */
    headers: Record<string, string> | (() => Record<string, string>);
    body?: string | undefined;
    agents: JsonAgents;
    timeoutMs: number;
    signal?: AbortSignal | undefined;
    /** Prefix for the timeout message (`service http://...: timed out`). */
    context?: string;
  },
): Promise<JsonResponse> {
  const target = new URL(url);
  const secure = target.protocol === 'https:';
  const timeout = AbortSignal.timeout(o.timeoutMs);
  const signal = o.signal ? AbortSignal.any([o.signal, timeout]) : timeout;
  const send = (): Promise<JsonResponse> =>
    new Promise<JsonResponse>((resolve, reject) => {
      const fail = (err: unknown): void => {
        if (timeout.aborted && !o.signal?.aborted) {
          const what = o.context === undefined ? 'timed out' : `${o.context}: timed out`;
          reject(new FerryError('unavailable', what, { cause: err }));
        } else reject(err instanceof Error ? err : new Error(String(err)));
      };
      const headers: Record<string, string> = {
        ...(typeof o.headers === 'function' ? o.headers() : o.headers),
      };
      if (o.body !== undefined) headers['content-length'] = String(Buffer.byteLength(o.body));
      const req = (secure ? https : http).request(
        target,
        { method: o.method, headers, agent: secure ? o.agents.https : o.agents.http, signal },
        (res) => {
          const chunks: Buffer[] = [];
          res.on('data', (chunk: Buffer) => chunks.push(chunk));
          res.on('end', () =>
            resolve({ status: res.statusCode ?? 0, text: Buffer.concat(chunks).toString('utf8') }),
          );
          res.on('error', fail);
        },
      );
      req.on('error', (err: NodeJS.ErrnoException) => {
        // A kept-alive socket the server closed while idle fails as soon as it is written to: the
        // request never reached the server, so sending it again on a fresh socket is safe.
        if (req.reusedSocket && (err.code === 'ECONNRESET' || err.code === 'EPIPE') && !signal.aborted) {
          reject(new StaleSocket());
        } else fail(err);
      });
      req.end(o.body);
    });
  return send().catch((err: unknown) => {
    if (err instanceof StaleSocket) return send();
    throw err;
  });
}

class StaleSocket extends Error {}

/**
 * The CLI's client for the service's REST API: bearer token, problem bodies turned into FerryErrors.
 * HTTPS is verified against --service-ca / FERRY_SERVICE_CA when given (else the system's CAs).
 */
import { FerryError, describeSystemError, fromProblem } from '../common/errors.ts';
import { serviceTlsProblem } from '../common/tls.ts';
import { jsonAgents, requestJson, type JsonAgents, type JsonResponse } from '../node/json-request.ts';

export class ApiClient {
  readonly base: string;
  readonly #token: string | undefined;
  readonly #agents: JsonAgents;

  /** `ca`: the PEM CA bundle that signed the service's certificate. */
  constructor(base: string, token: string | undefined, ca?: Buffer) {
    this.base = base.replace(/\/+$/, '');
    this.#token = token;
    this.#agents = jsonAgents({ maxSockets: 4, ca });
  }

  /** `timeoutMs`: how long to wait for the answer (default 30 s). */
  async request<T>(method: string, path: string, body?: unknown, timeoutMs = 30_000): Promise<T> {
    let res: JsonResponse;
    try {
      res = await requestJson(`${this.base}${path}`, {
        method,
        agents: this.#agents,
        headers: {
          ...(body === undefined ? {} : { 'content-type': 'application/json' }),
          ...(this.#token ? { authorization: `Bearer ${this.#token}` } : {}),
        },
        body: body === undefined ? undefined : JSON.stringify(body),
        timeoutMs,
      });
    } catch (err) {
      const tls = serviceTlsProblem(err, this.base);
      if (tls) throw tls;
      const why = err instanceof FerryError ? err.message : describeSystemError(err as Error);
      throw new FerryError('unavailable', `cannot reach the service at ${this.base}: ${why}`, {
        hint: /hang up|reset/i.test(why)
          ? 'if the service serves HTTPS (--tls-cert), use https:// in --service'
          : 'start it with `ferry up`, or pass --service URL',
      });
    }
    const parsed: unknown = res.text ? JSON.parse(res.text) : undefined;
    if (res.status >= 400) throw fromProblem(parsed, res.status);
    return parsed as T;
  }

  get<T>(path: string): Promise<T> {
    return this.request('GET', path);
  }
  post<T>(path: string, body: unknown = {}, timeoutMs?: number): Promise<T> {
    return this.request('POST', path, body, timeoutMs);
  }
  put<T>(path: string, body: unknown): Promise<T> {
    return this.request('PUT', path, body);
  }
  patch<T>(path: string, body: unknown): Promise<T> {
    return this.request('PATCH', path, body);
  }
  delete(path: string): Promise<void> {
    return this.request('DELETE', path);
  }
}

export const enc = encodeURIComponent;

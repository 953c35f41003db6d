/**
 * The node's calls to the service (outbound only). Errors come back as FerryErrors: the service's
 * problem body when it answered, `unavailable` when it could not be reached.
 */
import { Agent, request } from 'undici';
import { FerryError, fromProblem, toFerryError } from '../common/errors.ts';
import type {
  ClaimRequestT,
  ClaimResponseT,
  CompleteRequestT,
  HeartbeatRequestT,
  HeartbeatResponseT,
  ProgressRequestT,
  RegisterRequestT,
  RegisterResponseT,
} from '../protocol/agent.ts';

export class ServiceClient {
  readonly #base: string;
  #token: string | undefined;
  readonly #agent = new Agent({ keepAliveTimeout: 30_000, connections: 16, connect: { timeout: 5_000 } });

  constructor(baseUrl: string, token?: string) {
    this.#base = baseUrl.replace(/\/+$/, '');
    this.#token = token;
  }

  get baseUrl(): string {
    return this.#base;
  }

  setToken(token: string): void {
    this.#token = token;
  }

  async #call<T>(
    method: 'GET' | 'POST' | 'DELETE',
    path: string,
    body?: unknown,
    opts: { signal?: AbortSignal; timeoutMs?: number } = {},
  ): Promise<T> {
    let res;
    try {
      res = await request(`${this.#base}${path}`, {
        method,
        dispatcher: this.#agent,
        headers: {
          ...(body === undefined ? {} : { 'content-type': 'application/json' }),
          ...(this.#token ? { authorization: `Bearer ${this.#token}` } : {}),
        },
        ...(body === undefined ? {} : { body: JSON.stringify(body) }),
        ...(opts.signal ? { signal: opts.signal } : {}),
        headersTimeout: opts.timeoutMs ?? 15_000,
        bodyTimeout: opts.timeoutMs ?? 15_000,
      });
    } catch (err) {
      const fe = toFerryError(err, `service ${this.#base}`);
      if (fe.code === 'internal') throw new FerryError('unavailable', fe.message, { cause: err });
      throw fe;
    }
    const text = await res.body.text();
    const parsed: unknown = text.length > 0 ? JSON.parse(text) : undefined;
    if (res.statusCode >= 400) throw fromProblem(parsed, res.statusCode);
    return parsed as T;
  }

  register(req: RegisterRequestT): Promise<RegisterResponseT> {
    return this.#call('POST', '/api/v1/agent/register', req);
  }

  keyGateway(key: string): Promise<{ gatewayId: string; gatewayName: string }> {
    return this.#call('POST', '/api/v1/agent/key-gateway', { key });
  }

  heartbeat(req: HeartbeatRequestT, signal?: AbortSignal): Promise<HeartbeatResponseT> {
    return this.#call('POST', '/api/v1/agent/heartbeat', req, signal ? { signal } : {});
  }

  claim(req: ClaimRequestT, signal: AbortSignal): Promise<ClaimResponseT> {
    return this.#call('POST', '/api/v1/agent/claim', req, { signal, timeoutMs: req.waitMs + 15_000 });
  }

  progress(attemptId: string, p: ProgressRequestT): Promise<void> {
    return this.#call('POST', `/api/v1/agent/attempts/${encodeURIComponent(attemptId)}/progress`, p);
  }

  complete(attemptId: string, c: CompleteRequestT): Promise<void> {
    return this.#call('POST', `/api/v1/agent/attempts/${encodeURIComponent(attemptId)}/complete`, c);
  }

  release(attemptId: string, reason: string): Promise<void> {
    return this.#call('POST', `/api/v1/agent/attempts/${encodeURIComponent(attemptId)}/release`, { reason });
  }

  leave(): Promise<void> {
    return this.#call('DELETE', '/api/v1/agent/self');
  }

  async close(): Promise<void> {
    await this.#agent.close();
  }
}

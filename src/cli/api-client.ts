/** The CLI's client for the service's REST API: bearer token, problem bodies turned into FerryErrors. */
import { FerryError, fromProblem } from '../common/errors.ts';

export class ApiClient {
  readonly base: string;
  readonly #token: string | undefined;

  constructor(base: string, token: string | undefined) {
    this.base = base.replace(/\/+$/, '');
    this.#token = token;
  }

  async request<T>(method: string, path: string, body?: unknown): Promise<T> {
    let res: Response;
    try {
      res = await fetch(`${this.base}${path}`, {
        method,
        headers: {
          ...(body === undefined ? {} : { 'content-type': 'application/json' }),
          ...(this.#token ? { authorization: `Bearer ${this.#token}` } : {}),
        },
        ...(body === undefined ? {} : { body: JSON.stringify(body) }),
        signal: AbortSignal.timeout(30_000),
      });
    } catch (err) {
      const cause = (err as Error & { cause?: NodeJS.ErrnoException }).cause;
      const why =
        cause?.code === 'ECONNREFUSED' ? 'connection refused' : (cause?.message ?? (err as Error).message);
      throw new FerryError('unavailable', `cannot reach the service at ${this.base}: ${why}`, {
        hint: 'start it with `ferry up`, or pass --service URL',
      });
    }
    const text = await res.text();
    const parsed: unknown = text ? JSON.parse(text) : undefined;
    if (!res.ok) throw fromProblem(parsed, res.status);
    return parsed as T;
  }

  get<T>(path: string): Promise<T> {
    return this.request('GET', path);
  }
  post<T>(path: string, body: unknown = {}): Promise<T> {
    return this.request('POST', path, body);
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

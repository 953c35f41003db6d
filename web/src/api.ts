/**
 * The portal's only way to the service: the public REST API under /api/v1 (the one the CLI uses),
 * with the signed-in user's token. The token lives in sessionStorage only: it is gone when the tab
 * closes and is never written anywhere else. Every failure becomes an ApiError carrying the
 * service's own message and hint (its problem body), so pages can show them as they are.
 */

const TOKEN_KEY = 'ferry.token';

export function getToken(): string | null {
  return sessionStorage.getItem(TOKEN_KEY);
}

export function setToken(token: string | null): void {
  if (token === null) sessionStorage.removeItem(TOKEN_KEY);
  else sessionStorage.setItem(TOKEN_KEY, token);
  window.dispatchEvent(new Event('ferry-token'));
}

export class ApiError extends Error {
  readonly status: number;
  readonly code: string;
  readonly hint: string | undefined;
  constructor(status: number, code: string, message: string, hint?: string) {
    super(message);
    this.status = status;
    this.code = code;
    this.hint = hint;
  }
}

interface Problem {
  code?: unknown;
  message?: unknown;
  hint?: unknown;
}

export async function api<T>(method: string, path: string, body?: unknown, token = getToken()): Promise<T> {
  let res: Response;
  try {
    res = await fetch(`/api/v1${path}`, {
      method,
      headers: {
        ...(token ? { authorization: `Bearer ${token}` } : {}),
        ...(body === undefined ? {} : { 'content-type': 'application/json' }),
      },
      ...(body === undefined ? {} : { body: JSON.stringify(body) }),
    });
  } catch {
    throw new ApiError(
      0,
      'unavailable',
      'cannot reach the Ferry service',
      'check that `ferry service` (or `ferry up`) is running, then retry',
    );
  }
  const text = await res.text();
  let parsed: unknown = undefined;
  try {
    parsed = text ? JSON.parse(text) : undefined;
  } catch {
    // not JSON: a proxy's page, say
  }
  if (!res.ok) {
    const p = (parsed ?? {}) as Problem;
    throw new ApiError(
      res.status,
      typeof p.code === 'string' ? p.code : `http_${res.status}`,
      typeof p.message === 'string' ? p.message : `the service answered ${res.status} ${res.statusText}`,
      typeof p.hint === 'string' ? p.hint : undefined,
    );
  }
  return parsed as T;
}

/** A route the service does not have (an older service): 404 with "no route" in its message. */
export function isMissingRoute(err: unknown): boolean {
  return err instanceof ApiError && err.status === 404 && /^no route /.test(err.message);
}

export const enc = encodeURIComponent;

/**
 * Who is calling a user route, and whether their role lets them. A user token is either the bootstrap
 * admin token (FERRY_ADMIN_TOKEN, compared in constant time with its hash) or a stored API token,
 * looked up by its sha256 on every request: nothing is cached, so a revoke written by any service
 * replica refuses the token on every replica from the very next request. A known token whose role is
 * too low gets 403 `forbidden` naming the role needed and the token's role.
 */
import { timingSafeEqual } from 'node:crypto';
import type { FastifyRequest } from 'fastify';
import type { ServiceContext } from './context.ts';
import { FerryError } from '../common/errors.ts';
import { hashToken } from '../common/crypto.ts';
import { BOOTSTRAP_NAME, findApiTokenByHash, markApiTokenUsed } from './store/queries/api-tokens.ts';
import { isRole, roleAllows, type Role } from './roles.ts';

/** The user behind a request: a token's name and role. */
export interface Caller {
  /** The token's name, or "bootstrap" for FERRY_ADMIN_TOKEN. */
  name: string;
  role: Role;
}

declare module 'fastify' {
  interface FastifyRequest {
    /** Set on user routes once the token is known (before its role is checked). */
    caller: Caller | undefined;
  }
}

/** A token's last use is written at most this often (one write a minute, not one a request). */
export const LAST_USED_EVERY_MS = 60_000;

export class UserTokens {
  readonly #ctx: ServiceContext;
  readonly #bootstrapHash: Buffer;

  constructor(ctx: ServiceContext) {
    this.#ctx = ctx;
    this.#bootstrapHash = Buffer.from(ctx.adminTokenHash, 'hex');
  }

  /** The caller `token` belongs to; 401 when it is unknown or revoked. */
  async authenticate(token: string): Promise<Caller> {
    const hash = hashToken(token);
    if (timingSafeEqual(Buffer.from(hash, 'hex'), this.#bootstrapHash))
      return { name: BOOTSTRAP_NAME, role: 'admin' };
    const db = this.#ctx.store.db;
    const row = await findApiTokenByHash(db, hash);
    if (!row) throw new FerryError('unauthorized', 'invalid token');
    if (row.revoked_at !== null)
      throw new FerryError('unauthorized', 'this token was revoked', {
        hint: 'ask an admin for a new token (`ferry token create`)',
      });
    if (!isRole(row.role))
      throw new FerryError(
        'internal',
        `the token "${row.name}" has an unknown role "${row.role}" in the store`,
      );
    const now = this.#ctx.now();
    if (row.last_used_at === null || now - row.last_used_at >= LAST_USED_EVERY_MS) {
      try {
        await markApiTokenUsed(db, row.id, now, LAST_USED_EVERY_MS);
      } catch (err) {
        // Only bookkeeping: the request itself goes on.
        this.#ctx.log.warn({ err: (err as Error).message, tokenName: row.name }, 'cannot record a token use');
      }
    }
    return { name: row.name, role: row.role };
  }
}

/** Refuses (403) a caller whose role is below `need`. */
export function authorize(req: FastifyRequest, caller: Caller, need: Role): void {
  if (roleAllows(caller.role, need)) return;
  const route = `${req.method} ${openapiPath(req.routeOptions.url ?? req.url)}`;
  throw new FerryError(
    'forbidden',
    `${route} needs the ${need} role${need === 'admin' ? '' : ' or higher'}; the token "${caller.name}" has the ${caller.role} role`,
    {
      hint: `ask an admin for a token with the ${need} role (ferry token create --name NAME --role ${need})`,
    },
  );
}

/** Fastify's `/a/:name` as the OpenAPI document writes it: `/a/{name}`. */
export function openapiPath(url: string): string {
  return url.replace(/:(\w+)/g, '{$1}');
}

/** The caller of a user route (set by the auth hook). */
export function callerOf(req: FastifyRequest): Caller {
  if (!req.caller) throw new FerryError('unauthorized', 'no API token');
  return req.caller;
}

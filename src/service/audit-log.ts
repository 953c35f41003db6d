/**
 * The audit log: who changed what. One Fastify hook (onSend, so the entry is written before the
 * caller has its answer) records every request with a method other than GET/HEAD/OPTIONS that reached
 * a user route with a known token, refused or not: the time, the token's name and role, the route as
 * the OpenAPI document names it, its path parameters, a few body fields known to be safe for that
 * route, and the status answered. Nothing else of a body is kept: a route not listed in SAFE_FIELDS
 * records none of its body, so a secret (a linked service's password, a credential) never lands
 * here. Requests without a valid token are not recorded (there is no one to name, and a flood of them
 * would fill the log). Entries older than the retention are deleted on insert (and on read), at most
 * once an hour per service process.
 */
import type { FastifyReply, FastifyRequest } from 'fastify';
import type { Kysely } from 'kysely';
import type { Schema } from './store/schema.ts';
import type { Logger } from '../common/logger.ts';
import { insertAuditEntry, pruneAuditLog } from './store/queries/audit-log.ts';
import { openapiPath } from './callers.ts';

const DAY_MS = 86_400_000;
/** How often a service process deletes what is past the retention. */
export const PRUNE_EVERY_MS = 3_600_000;
/** A recorded value longer than this is cut (a body field can be as large as the body limit). */
const MAX_VALUE_CHARS = 200;

/**
 * The body fields each changing route may record (`METHOD route`), only when they are scalars; and
 * the response fields recorded under another name on success (the id of what was made).
 */
const SAFE_FIELDS: Record<string, { body?: string[]; response?: Record<string, string> }> = {
  'POST /api/v1/gateways': { body: ['name', 'maxNodes'] },
  'PATCH /api/v1/gateways/{name}': { body: ['maxNodes', 'encryption'] },
  'PUT /api/v1/gateways/{name}/nodes/{node}/limit': { body: ['limit'] },
  // A linked service: its name, type and gateway; never its properties (secrets among them).
  'POST /api/v1/linked-services': { body: ['name', 'type', 'gateway', 'credentials'] },
  // Credentials: which version was granted and relayed; never the box (even sealed, it stays out).
  'POST /api/v1/linked-services/{name}/credential-grant': {
    body: ['node'],
    response: { version: 'version' },
  },
  'POST /api/v1/linked-services/{name}/credentials': { body: ['version'] },
  'POST /api/v1/linked-services/{name}/test': { body: ['node', 'write'] },
  'PUT /api/v1/pipelines': { body: ['name'], response: { version: 'version' } },
  'POST /api/v1/pipelines/{name}/runs': { response: { id: 'runId' } },
  'POST /api/v1/tokens': { body: ['name', 'role'] },
};

const READS = new Set(['GET', 'HEAD', 'OPTIONS']);

type Scalar = string | number | boolean | null;

export interface AuditEntryInput {
  actor: string;
  actorRole: string;
  method: string;
  route: string;
  params: Record<string, Scalar>;
  details: Record<string, Scalar>;
  status: number;
}

function scalar(v: unknown): Scalar | undefined {
  if (typeof v === 'string') return v.length > MAX_VALUE_CHARS ? `${v.slice(0, MAX_VALUE_CHARS)}...` : v;
  if (typeof v === 'number' || typeof v === 'boolean' || v === null) return v;
  return undefined;
}

function pick(from: unknown, fields: Record<string, string>): Record<string, Scalar> {
  const out: Record<string, Scalar> = {};
  if (from === null || typeof from !== 'object') return out;
  for (const [field, as] of Object.entries(fields)) {
    const v = scalar((from as Record<string, unknown>)[field]);
    if (v !== undefined) out[as] = v;
  }
  return out;
}

export class AuditLog {
  readonly #db: Kysely<Schema>;
  readonly #retentionMs: number;
  readonly #log: Logger;
  #prunedAt = Number.NEGATIVE_INFINITY;

  constructor(db: Kysely<Schema>, retentionDays: number, log: Logger) {
    this.#db = db;
    this.#retentionMs = retentionDays * DAY_MS;
    this.#log = log;
  }

  async record(entry: AuditEntryInput, now: number): Promise<void> {
    await insertAuditEntry(this.#db, {
      at: now,
      actor: entry.actor,
      actor_role: entry.actorRole,
      method: entry.method,
      route: entry.route,
      params_json: JSON.stringify(entry.params),
      details_json: JSON.stringify(entry.details),
      status: entry.status,
    });
    await this.prune(now);
  }

  /** Deletes what is past the retention, unless this process did so within the hour. */
  async prune(now: number): Promise<void> {
    if (now - this.#prunedAt < PRUNE_EVERY_MS) return;
    this.#prunedAt = now;
    const gone = await pruneAuditLog(this.#db, now - this.#retentionMs);
    if (gone > 0) this.#log.info({ deleted: gone }, 'audit log entries past their retention deleted');
  }

  /** The onSend hook: records a changing request of a known caller. */
  hook(now: () => number) {
    return async (req: FastifyRequest, reply: FastifyReply, payload: unknown): Promise<unknown> => {
      const caller = req.caller;
      if (!caller || READS.has(req.method) || req.is404) return payload;
      const route = openapiPath(req.routeOptions.url ?? req.url);
      const safe = SAFE_FIELDS[`${req.method} ${route}`];
      const params = pick(
        req.params,
        Object.fromEntries(Object.keys((req.params as object | undefined) ?? {}).map((k) => [k, k])),
      );
      const details = safe?.body ? pick(req.body, Object.fromEntries(safe.body.map((f) => [f, f]))) : {};
      if (safe?.response && reply.statusCode < 300 && typeof payload === 'string') {
        try {
          Object.assign(details, pick(JSON.parse(payload), safe.response));
        } catch {
          /* not JSON: nothing to pick */
        }
      }
      try {
        await this.record(
          {
            actor: caller.name,
            actorRole: caller.role,
            method: req.method,
            route,
            params,
            details,
            status: reply.statusCode,
          },
          now(),
        );
      } catch (err) {
        // The change (if any) is made; the answer goes out, and the missing entry is logged.
        this.#log.error(
          {
            err: (err as Error).message,
            actor: caller.name,
            method: req.method,
            route,
            status: reply.statusCode,
          },
          'cannot write the audit log entry',
        );
      }
      return payload;
    };
  }
}

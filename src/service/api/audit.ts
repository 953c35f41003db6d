/** /api/v1/audit: the audit log, newest first (admin only). Written by src/service/audit-log.ts. */
import { Type } from 'typebox';
import type { App } from './route-access.ts';
import type { ServiceContext } from '../context.ts';
import type { AuditLog } from '../audit-log.ts';
import { listAuditEntries } from '../store/queries/audit-log.ts';
import { FerryError } from '../../common/errors.ts';
import { responses } from './schemas.ts';
import { AuditEntries } from './access-schemas.ts';

function parseObject(json: string): Record<string, string | number | boolean | null> {
  return JSON.parse(json) as Record<string, string | number | boolean | null>;
}

export function auditRoutes(app: App, ctx: ServiceContext, audit: AuditLog): void {
  app.get(
    '/api/v1/audit',
    {
      schema: {
        tags: ['audit'],
        operationId: 'listAuditEntries',
        summary: 'Who changed what, newest first',
        description:
          'Every request other than a read that reached a route with a valid API token, refused or ' +
          'not, within the retention (the service option auditRetentionDays).',
        querystring: Type.Object({
          since: Type.Optional(
            Type.String({ format: 'date-time', description: 'Only entries at or after this time.' }),
          ),
          limit: Type.Optional(Type.Integer({ minimum: 1, maximum: 1000, description: 'Default 100.' })),
          actor: Type.Optional(
            Type.String({
              maxLength: 200,
              description: 'Only this token\'s entries (its name, or "bootstrap").',
            }),
          ),
        }),
        response: responses({ 200: ['The entries', AuditEntries] }),
      },
    },
    async (req) => {
      const since = req.query.since === undefined ? undefined : Date.parse(req.query.since);
      if (since !== undefined && !Number.isFinite(since))
        throw new FerryError('bad_request', `querystring/since: not a date-time (got "${req.query.since}")`);
      await audit.prune(ctx.now());
      const rows = await listAuditEntries(ctx.store.db, {
        since,
        actor: req.query.actor,
        limit: req.query.limit ?? 100,
      });
      return {
        entries: rows.map((r) => ({
          id: r.id,
          at: new Date(r.at).toISOString(),
          actor: r.actor,
          role: r.actor_role,
          method: r.method,
          route: r.route,
          params: parseObject(r.params_json),
          details: parseObject(r.details_json),
          status: r.status,
        })),
      };
    },
  );
}

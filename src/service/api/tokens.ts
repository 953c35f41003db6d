/** /api/v1/tokens: API tokens with roles (admin only). A token is shown once, when it is made. */
import { Type } from 'typebox';
import type { App } from './route-access.ts';
import type { ServiceContext } from '../context.ts';
import { NameSchema } from '../../protocol/stores.ts';
import { createApiToken, listApiTokens, revokeApiToken } from '../store/queries/api-tokens.ts';
import type { ApiTokensTable } from '../store/schema.ts';
import { callerOf } from '../callers.ts';
import { isRole } from '../roles.ts';
import { FerryError } from '../../common/errors.ts';
import { responses } from './schemas.ts';
import { ApiTokenCreate, ApiTokenCreated, ApiTokenList } from './access-schemas.ts';

const iso = (ms: number | null) => (ms === null ? null : new Date(ms).toISOString());

function tokenView(r: ApiTokensTable) {
  if (!isRole(r.role))
    throw new FerryError('internal', `the token "${r.name}" has an unknown role "${r.role}"`);
  return {
    id: r.id,
    name: r.name,
    role: r.role,
    createdAt: new Date(r.created_at).toISOString(),
    createdBy: r.created_by,
    lastUsedAt: iso(r.last_used_at),
    revokedAt: iso(r.revoked_at),
    revokedBy: r.revoked_by,
  };
}

export function tokenRoutes(app: App, ctx: ServiceContext): void {
  const db = ctx.store.db;

  app.post(
    '/api/v1/tokens',
    {
      schema: {
        tags: ['tokens'],
        operationId: 'createApiToken',
        summary: 'Make an API token with a role',
        description: 'The answer carries the token itself: it is shown this once and kept only as its hash.',
        body: ApiTokenCreate,
        response: responses({ 201: ['The new token, with the token itself', ApiTokenCreated] }),
      },
    },
    async (req, reply) => {
      const { row, token } = await createApiToken(
        db,
        { name: req.body.name, role: req.body.role, createdBy: callerOf(req).name },
        ctx.now(),
      );
      void reply.status(201);
      return { ...tokenView(row), token };
    },
  );

  app.get(
    '/api/v1/tokens',
    {
      schema: {
        tags: ['tokens'],
        operationId: 'listApiTokens',
        summary: 'List the API tokens, revoked ones included (never the tokens themselves)',
        response: responses({ 200: ['The tokens', ApiTokenList] }),
      },
    },
    async () => ({ tokens: (await listApiTokens(db)).map(tokenView) }),
  );

  app.delete(
    '/api/v1/tokens/:name',
    {
      schema: {
        tags: ['tokens'],
        operationId: 'revokeApiToken',
        summary: 'Revoke an API token: refused from the very next request, on every service replica',
        params: Type.Object({ name: NameSchema }),
        response: responses({ 204: 'Revoked' }),
      },
    },
    async (req, reply) => {
      await revokeApiToken(db, req.params.name, callerOf(req).name, ctx.now());
      void reply.status(204);
    },
  );
}

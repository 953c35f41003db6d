/**
 * What a route module (api/*.ts) registers on and declares: the app's type, and who may call each
 * route (`config: PUBLIC`, `NODE_ONLY`, `READER`, `OPERATOR`; admin only when it says nothing). app.ts builds the app
 * and its one auth hook enforces the declaration; routes import this, not app.ts, so the app can
 * import the routes.
 */
import type { FastifyBaseLogger, FastifyInstance, FastifyRequest } from 'fastify';
import type { IncomingMessage, Server, ServerResponse } from 'node:http';
import type { TypeBoxTypeProvider } from '@fastify/type-provider-typebox';
import { FerryError } from '../../common/errors.ts';
import type { NodesTable } from '../store/schema.ts';
import type { RouteAccess } from '../roles.ts';

export type App = FastifyInstance<
  Server,
  IncomingMessage,
  ServerResponse,
  FastifyBaseLogger,
  TypeBoxTypeProvider
>;

/**
 * Who may call a route (src/service/roles.ts): the lowest role whose API token may (`admin`, the
 * default; `operator`; `reader`), `node` (a registered node's token) or `public` (no token; only the
 * routes on the allow-list).
 */
export type { RouteAccess };

export const PUBLIC = { access: 'public' } as const satisfies { access: RouteAccess };
export const NODE_ONLY = { access: 'node' } as const satisfies { access: RouteAccess };
/** Any API token: every read, except the token list and the audit log. */
export const READER = { access: 'reader' } as const satisfies { access: RouteAccess };
/** An operator's or admin's token: running pipelines, draining nodes and the like. */
export const OPERATOR = { access: 'operator' } as const satisfies { access: RouteAccess };

declare module 'fastify' {
  interface FastifyContextConfig {
    access?: RouteAccess;
  }
  interface FastifyRequest {
    /** Set on /api/v1/agent routes: the node the token belongs to. */
    node: NodesTable | undefined;
  }
}

/** The node an agent route was called by (set by the auth hook). */
export function callerNode(req: FastifyRequest): NodesTable {
  if (!req.node) throw new FerryError('unauthorized', 'not a node');
  return req.node;
}

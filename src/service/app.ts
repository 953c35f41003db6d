/**
 * The service's HTTP app: REST API under /api/v1 (OpenAPI at /api/v1/openapi.json), /healthz,
 * /metrics and the portal at / (portal.ts). One error handler turns every failure into a problem response; one hook authenticates.
 */
import Fastify, { type FastifyError, type FastifyInstance, type FastifyRequest } from 'fastify';
import type { IncomingMessage } from 'node:http';
import type { Duplex } from 'node:stream';
import swagger from '@fastify/swagger';
import { TypeBoxValidatorCompiler, type TypeBoxTypeProvider } from '@fastify/type-provider-typebox';
import type { ServiceContext } from './context.ts';
import { FerryError, toFerryError, toProblem } from '../common/errors.ts';
import { answerClientError } from '../common/client-error.ts';
import { getNodeByToken } from './store/queries/nodes.ts';
import { STORE_RETRY_AFTER_S, storeUnavailable } from './store/store-errors.ts';
import { gatewayRoutes } from './api/gateways.ts';
import { linkedServiceRoutes } from './api/linked-services.ts';
import { pipelineRoutes } from './api/pipelines.ts';
import { agentRoutes } from './api/agent.ts';
import { PUBLIC, type App, type RouteAccess } from './api/route-access.ts';
import { tokenRoutes } from './api/tokens.ts';
import { auditRoutes } from './api/audit.ts';
import { metricsHistoryRoutes } from './api/metrics-history.ts';
import { portalRoutes } from './portal.ts';
import { UserTokens, authorize } from './callers.ts';
import { AuditLog } from './audit-log.ts';
import { accessSentence, allowedCallers } from './roles.ts';
import { ferryVersion } from '../common/version.ts';
import { errorMeaning } from '../protocol/validate.ts';

function bearer(req: FastifyRequest): string | undefined {
  const h = req.headers.authorization;
  return h?.startsWith('Bearer ') ? h.slice(7).trim() : undefined;
}

function routeAccess(req: FastifyRequest): RouteAccess {
  return req.routeOptions.config.access ?? 'admin';
}

/**
 * The largest body a route takes unless it says otherwise: every admin message is far smaller. Routes
 * that carry more set their own `bodyLimit` (node reports, pipelines); the public key routes less.
 */
export const DEFAULT_BODY_LIMIT = 1024 * 1024;

/** `https`: the certificate and key to serve HTTPS with; plain HTTP without. */
export async function buildApp(ctx: ServiceContext, https?: { cert: Buffer; key: Buffer }): Promise<App> {
  const o = ctx.options;
  const common = {
    logger: false,
    bodyLimit: DEFAULT_BODY_LIMIT,
    forceCloseConnections: true,
    // A client that is slow on purpose (slow-loris) is cut: its headers must arrive within
    // headersTimeoutMs and its whole request within requestTimeoutMs (checked every second), and an
    // idle kept-alive connection is closed after keepAliveTimeoutMs. A response may take as long as
    // it needs (a claim is a long-poll): these bound only what the client sends.
    requestTimeout: o.requestTimeoutMs,
    keepAliveTimeout: o.keepAliveTimeoutMs,
    http: {
      headersTimeout: o.headersTimeoutMs,
      connectionsCheckingInterval: Math.min(1000, o.headersTimeoutMs),
    },
    clientErrorHandler: (err: Error, socket: Duplex) => answerClientError(err, socket, o),
  } as const;
  // An HTTPS Fastify is typed over https.Server; routes and hooks use nothing that differs.
  const base = https ? (Fastify({ ...common, https }) as unknown as FastifyInstance) : Fastify(common);
  const app = base.withTypeProvider<TypeBoxTypeProvider>().setValidatorCompiler(TypeBoxValidatorCompiler);

  // Responses are written with JSON.stringify, as Fastify writes a route without a response schema:
  // the response schemas describe the bodies for the OpenAPI document (a serializer built from them
  // would drop any field they do not list); test/api.openapi.test.ts holds them true.
  app.setSerializerCompiler(() => (data) => JSON.stringify(data));

  await app.register(swagger, {
    // Every schema with an $id (src/service/api/schemas.ts) is a named component.
    refResolver: {
      buildLocalReference: (json, _baseUri, _fragment, i) =>
        typeof json.$id === 'string' ? json.$id : `def-${i}`,
    },
    transform: ({ schema, url, route }) => ({
      schema: documentAccess(nameRequestBody(schema), route.config?.access ?? 'admin'),
      url,
    }),
    transformObject: (doc) => unwrapNamed('openapiObject' in doc ? doc.openapiObject : doc.swaggerObject),
    openapi: {
      openapi: '3.1.0',
      info: {
        title: 'Ferry API',
        version: ferryVersion(),
        description: 'Control plane of the Ferry data movement gateway.',
      },
      components: { securitySchemes: { bearer: { type: 'http', scheme: 'bearer' } } },
      security: [{ bearer: [] }],
    },
  });

  app.decorateRequest('node', undefined);
  app.decorateRequest('caller', undefined);
  // The API speaks JSON only: a text body would reach the schema as a string.
  app.removeContentTypeParser('text/plain');

  app.setErrorHandler(async (err: FastifyError, req, reply) => {
    let fe: FerryError;
    const storeDown = storeUnavailable(err);
    if (storeDown) {
      fe = storeDown;
      void reply.header('retry-after', String(STORE_RETRY_AFTER_S));
    } else if (err.validation) {
      const v = err.validation[0];
      const field =
        v?.instancePath?.replace(/^\//, '') ||
        (v?.params as { requiredProperties?: string[] } | undefined)?.requiredProperties?.[0] ||
        '';
      // TypeBox reports an unknown property as "schema is false" and a literal as "equal to constant".
      const why =
        v?.keyword === 'boolean'
          ? 'is not a known field'
          : v?.keyword === 'const'
            ? `must be one of ${err.validation
                .filter((x) => x.keyword === 'const' && x.instancePath === v.instancePath)
                .map((x) => JSON.stringify((x.params as { allowedValue?: unknown }).allowedValue))
                .join(', ')}`
            : v
              ? errorMeaning(v)
              : err.message;
      fe = new FerryError(
        'bad_request',
        `${err.validationContext ?? 'body'}${field ? `/${field}` : ''}: ${why}`,
      );
    } else if (err.statusCode === 415) {
      fe = new FerryError(
        'bad_request',
        `content-type ${req.headers['content-type'] ?? '(none)'} is not accepted`,
        {
          hint: 'send the body as application/json',
        },
      );
    } else if (err.statusCode === 413) {
      fe = new FerryError(
        'bad_request',
        `the body is larger than ${req.routeOptions.url ?? req.url} takes (at most ${req.routeOptions.bodyLimit} bytes)`,
      );
    } else if (err.statusCode === 400) {
      fe = new FerryError('bad_request', err.message);
    } else {
      fe = toFerryError(err);
    }
    if (fe.code === 'internal')
      ctx.log.error({ err: err.message, stack: err.stack, url: req.url }, 'request failed');
    if (!req.raw.complete) {
      // A client that proved its token may send up to the largest limit before it is cut; one that
      // did not (or is on a public route) only a little.
      const trusted =
        !req.is404 &&
        routeAccess(req) !== 'public' &&
        fe.code !== 'unauthorized' &&
        fe.code !== 'rate_limited';
      if (!(await discardRest(req.raw, trusted ? TRUSTED_LINGER_BYTES : LINGER_BYTES))) {
        reply.hijack();
        req.raw.socket.destroy();
        return;
      }
    }
    return reply.status(fe.httpStatus).send(toProblem(fe));
  });
  app.setNotFoundHandler((req, reply) => {
    void reply.status(404).send(toProblem(new FerryError('not_found', `no route ${req.method} ${req.url}`)));
  });

  // Authentication runs in onRequest, before the body is read (Fastify parses it after the
  // onRequest and preParsing hooks): a request without a valid token costs no more than its headers.
  // Authentication is decided on the route that will run (its registered pattern, after the router
  // has decoded and matched the path), never on the raw URL: `/%61pi/v1/...` is the same route as
  // `/api/v1/...` and gets the same check. Default-deny: a route is admin-only unless its `config`
  // says `access: 'public'` (the allow-list: health, metrics, the OpenAPI document, node registration)
  // or `access: 'node'` (a node's token), or names the lowest role whose API token may call it
  // (`reader`, `operator`; src/service/callers.ts). A path no route matches is a 404 and runs nothing.
  const users = new UserTokens(ctx);
  app.addHook('onRequest', async (req) => {
    if (req.is404) return;
    const access = routeAccess(req);
    if (access === 'public') return;
    const token = bearer(req);
    if (!token)
      throw new FerryError('unauthorized', 'missing bearer token', {
        hint: 'pass --token or set FERRY_TOKEN',
      });
    if (access === 'node') {
      const node = await getNodeByToken(ctx.store.db, token);
      if (!node) {
        throw new FerryError(
          'unauthorized',
          'this node is not registered (it may have been deleted from its gateway)',
          {
            hint: 'run `ferry node leave --data-dir DIR` on the node, then register it again with a key',
          },
        );
      }
      req.node = node;
      return;
    }
    // Known before the role is checked, so that a refused attempt is in the audit log too.
    req.caller = await users.authenticate(token);
    authorize(req, req.caller, access);
  });
  const audit = new AuditLog(ctx.store.db, o.auditRetentionDays, ctx.log);
  app.addHook(
    'onSend',
    audit.hook(() => ctx.now()),
  );

  app.get('/healthz', { schema: { hide: true }, config: PUBLIC }, async () => ({
    status: 'ok',
    version: ferryVersion(),
    store: ctx.store.dialect,
  }));
  app.get('/metrics', { schema: { hide: true }, config: PUBLIC }, async (_req, reply) => {
    void reply.header('content-type', ctx.metrics.registry.contentType);
    return ctx.metrics.registry.metrics();
  });
  app.get('/api/v1/openapi.json', { schema: { hide: true }, config: PUBLIC }, async () => app.swagger());

  gatewayRoutes(app, ctx);
  metricsHistoryRoutes(app, ctx);
  linkedServiceRoutes(app, ctx);
  pipelineRoutes(app, ctx);
  agentRoutes(app, ctx);
  tokenRoutes(app, ctx);
  auditRoutes(app, ctx, audit);
  portalRoutes(app, o.portalDir);
  return app;
}

/**
 * A route's top-level schema is inlined in the document, a nested one with an $id named: a named
 * request body is wrapped in an allOf for the document only (validation uses the route's own).
 */
function nameRequestBody<S extends { body?: unknown }>(schema: S): S {
  const body = schema?.body as { $id?: unknown } | undefined;
  return body && typeof body.$id === 'string' ? { ...schema, body: { allOf: [body] } } : schema;
}

/**
 * The callers an operation takes, in the document: `x-ferry-roles` (src/service/roles.ts
 * allowedCallers) and a sentence at the end of its description. Derived from the route's own
 * `config.access`, the one the auth hook enforces, so the two cannot disagree.
 */
function documentAccess<S>(schema: S, access: RouteAccess): S {
  if (!schema) return schema;
  const s = schema as { description?: string };
  return {
    ...schema,
    description: s.description ? `${s.description} ${accessSentence(access)}` : accessSentence(access),
    'x-ferry-roles': allowedCallers(access),
  };
}

/**
 * `{ allOf: [{ $ref }] }` (a named body or response, see above and schemas.ts) becomes the `$ref`
 * (a response's description is already its response object's).
 */
function unwrapNamed<T>(node: T): T {
  if (Array.isArray(node)) return node.map(unwrapNamed) as T;
  if (node === null || typeof node !== 'object') return node;
  const o = node as Record<string, unknown>;
  const { allOf, ...rest } = o;
  if (
    Array.isArray(allOf) &&
    allOf.length === 1 &&
    typeof (allOf[0] as { $ref?: unknown }).$ref === 'string' &&
    Object.keys(rest).every((k) => k === 'description')
  )
    return allOf[0] as T; // the response's description is the response object's
  return Object.fromEntries(Object.entries(o).map(([k, v]) => [k, unwrapNamed(v)])) as T;
}

/** The most a refused request may still send, discarded, before its connection is cut ... */
const LINGER_BYTES = 1024 * 1024;
/** ... and, from a client with a valid token, the largest body any route takes. */
const TRUSTED_LINGER_BYTES = 64 * 1024 * 1024;

/**
 * A request refused before its body was read (no token, too large, rate limited): what the client
 * still sends is read and thrown away, never kept, and the refusal is sent once it has all arrived,
 * so that an honest client finishes sending and reads it (answering first would close the connection
 * under its feet). False when the client sent more than `maxBytes` or went away: its connection is
 * then cut with no answer. The request timeout bounds how long this may take.
 */
function discardRest(raw: IncomingMessage, maxBytes: number): Promise<boolean> {
  if (raw.complete) return Promise.resolve(true);
  return new Promise((resolve) => {
    let seen = 0;
    const done = (whole: boolean): void => {
      raw.off('data', onData);
      raw.off('end', onEnd);
      raw.off('close', onClose);
      resolve(whole);
    };
    const onData = (chunk: Buffer): void => {
      seen += chunk.length;
      if (seen > maxBytes) done(false);
    };
    const onEnd = (): void => done(true);
    const onClose = (): void => done(raw.complete);
    raw.on('data', onData);
    raw.on('end', onEnd);
    raw.on('close', onClose);
    raw.resume();
  });
}

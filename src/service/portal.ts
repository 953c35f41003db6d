/**
 * The portal (web/, a React single-page app) served at `/` next to the API. Only the build folder's
 * own files are served, and only by name: `/assets/NAME` where NAME is one plain file name (no
 * slash, no dot-dot, whatever the encoding: the router decodes the path before the name is checked),
 * plus the few files at the top of the folder, listed once at start. The app's page routes (listed
 * here, the same as web/src/routes.ts) answer index.html so a reload or a shared link opens the right
 * page; any other path stays a 404 from the API's not-found handler. Every portal route is public:
 * the pages hold no data, and each call they make to the API carries the signed-in user's token.
 * When the build folder is missing, `/` and the page routes say how to build it instead.
 */
import { existsSync, readFileSync, readdirSync, statSync } from 'node:fs';
import { extname, join } from 'node:path';
import type { FastifyReply } from 'fastify';
import { Type } from 'typebox';
import { PUBLIC, type App } from './api/route-access.ts';

/** The client-side routes of the app (web/src/routes.ts). */
export const PAGE_ROUTES = [
  '/',
  '/gateways',
  '/gateways/:name',
  '/gateways/:name/nodes/:node',
  '/pipelines',
  '/runs',
  '/runs/:id',
] as const;

const CONTENT_TYPES: Record<string, string> = {
  '.html': 'text/html; charset=utf-8',
  '.js': 'text/javascript; charset=utf-8',
  '.css': 'text/css; charset=utf-8',
  '.svg': 'image/svg+xml',
  '.png': 'image/png',
  '.ico': 'image/x-icon',
  '.json': 'application/json',
  '.txt': 'text/plain; charset=utf-8',
  '.woff2': 'font/woff2',
};

/** One plain file name: no separator, no leading dot (so no `.` or `..`), printable ASCII. */
const FILE_NAME = /^[A-Za-z0-9_-][A-Za-z0-9._-]*$/;

/**
 * The pages load scripts and styles from the service only, talk to the service only, and may not be
 * framed (clickjacking of the node actions).
 */
const SECURITY_HEADERS = {
  'content-security-policy':
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'self'",
  'x-content-type-options': 'nosniff',
  'x-frame-options': 'DENY',
  'referrer-policy': 'no-referrer',
};

function notBuilt(dir: string): string {
  return `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Ferry</title></head>
<body>
<h1>The Ferry portal is not built</h1>
<p>The API works (<a href="/api/v1/openapi.json">/api/v1/openapi.json</a>), but the portal's files are not in
<code>${dir.replace(/[<>&"]/g, '')}</code>.</p>
<p>Build them in Ferry's folder with <code>npm run build:web</code> (<code>npm ci</code> and <code>npm start</code>
do it too), then reload this page.</p>
</body></html>
`;
}

export function portalRoutes(app: App, portalDir: string): void {
  const assetsDir = join(portalDir, 'assets');
  // The files at the top of the build folder (index.html, favicon.svg, ...), served by exact name.
  const topFiles = existsSync(portalDir)
    ? readdirSync(portalDir).filter(
        (f) => FILE_NAME.test(f) && f !== 'index.html' && statSync(join(portalDir, f)).isFile(),
      )
    : [];

  const send = (reply: FastifyReply, file: string, cache: string): FastifyReply => {
    const type = CONTENT_TYPES[extname(file)] ?? 'application/octet-stream';
    return reply.headers(SECURITY_HEADERS).header('cache-control', cache).type(type).send(readFileSync(file));
  };
  const page = async (_req: unknown, reply: FastifyReply) => {
    const index = join(portalDir, 'index.html');
    if (!existsSync(index))
      return reply
        .status(503)
        .headers(SECURITY_HEADERS)
        .header('cache-control', 'no-store')
        .type('text/html; charset=utf-8')
        .send(notBuilt(portalDir));
    return send(reply, index, 'no-cache');
  };
  const notFound = (reply: FastifyReply, what: string) =>
    reply.status(404).send({
      code: 'not_found',
      message: `the portal has no file ${what}`,
      retryable: false,
    });

  for (const url of PAGE_ROUTES) app.get(url, { schema: { hide: true }, config: PUBLIC }, page);

  // Hashed file names (Vite's): they never change, so they may be cached for good.
  app.get(
    '/assets/:file',
    {
      schema: { hide: true, params: Type.Object({ file: Type.String({ maxLength: 200 }) }) },
      config: PUBLIC,
    },
    async (req, reply) => {
      const name = req.params.file;
      const file = join(assetsDir, name);
      if (!FILE_NAME.test(name) || !existsSync(file) || !statSync(file).isFile())
        return notFound(reply, `assets/${name.slice(0, 100)}`);
      return send(reply, file, 'public, max-age=31536000, immutable');
    },
  );
  for (const name of topFiles)
    app.get(`/${name}`, { schema: { hide: true }, config: PUBLIC }, async (_r, reply) =>
      send(reply, join(portalDir, name), 'no-cache'),
    );
}

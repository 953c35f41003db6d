/**
 * The portal as the service serves it (no browser): index.html at `/` and at each page route, the
 * build's assets by name, nothing else. Refusals from an attacker's side: encoded dot-dot paths and
 * separators, the sources next to the build, the project's own files, other methods, and API paths
 * that must stay JSON 404s. A service whose build folder is missing says at `/` how to build it,
 * and its API works all the same. The build script builds only when it must.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import {
  cpSync,
  existsSync,
  mkdirSync,
  readFileSync,
  readdirSync,
  rmSync,
  symlinkSync,
  utimesSync,
} from 'node:fs';
import { request } from 'node:http';
import { join } from 'node:path';
import { gzipSync } from 'node:zlib';
import { NODE, ROOT, startService, tempDir } from './helpers/cluster.ts';

const DIST = join(ROOT, 'web/dist');

/** A GET (or `method`) of `path` exactly as written: node:http sends it unnormalized, unlike fetch. */
function raw(
  base: string,
  path: string,
  method = 'GET',
): Promise<{ status: number; type: string; headers: Record<string, unknown>; body: string }> {
  const u = new URL(base);
  return new Promise((resolve, reject) => {
    const req = request({ host: u.hostname, port: u.port, path, method }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (d: string) => (body += d));
      res.on('end', () =>
        resolve({
          status: res.statusCode ?? 0,
          type: String(res.headers['content-type'] ?? ''),
          headers: res.headers,
          body,
        }),
      );
    });
    req.on('error', reject);
    req.end();
  });
}

test('the portal is served at / and its page routes; its assets by name; every other path is a 404', async (t) => {
  assert.ok(
    existsSync(join(DIST, 'index.html')),
    'web/dist is built (npm ci or `npm run build:web` does it)',
  );
  const svc = await startService(t);
  const index = readFileSync(join(DIST, 'index.html'), 'utf8');

  for (const page of [
    '/',
    '/gateways',
    '/gateways/gw',
    '/gateways/gw/nodes/node-1',
    '/pipelines',
    '/runs',
    '/runs/run_1',
  ]) {
    const r = await raw(svc.url, page);
    assert.equal(r.status, 200, page);
    assert.match(r.type, /^text\/html/, page);
    assert.equal(r.body, index, page);
    assert.match(String(r.headers['content-security-policy']), /default-src 'self'/);
    assert.match(String(r.headers['content-security-policy']), /frame-ancestors 'none'/);
    assert.equal(r.headers['x-content-type-options'], 'nosniff');
  }

  // The assets index.html names, with their types, cached for good (their names are hashed).
  const assets = [...index.matchAll(/(?:src|href)="(\/assets\/[^"]+)"/g)].map((m) => m[1] ?? '');
  assert.ok(assets.some((a) => a.endsWith('.js')) && assets.some((a) => a.endsWith('.css')), index);
  for (const a of assets) {
    const r = await raw(svc.url, a);
    assert.equal(r.status, 200, a);
    assert.match(r.type, a.endsWith('.js') ? /^text\/javascript/ : /^text\/css/, a);
    assert.match(String(r.headers['cache-control']), /immutable/);
    assert.equal(r.body, readFileSync(join(DIST, a), 'utf8'));
  }
  assert.equal((await raw(svc.url, '/favicon.svg')).status, 200);
  // The bundle stays small (the README gives its size): under 100 KB gzipped, scripts and styles.
  const gzipped = assets.reduce((sum, a) => sum + gzipSync(readFileSync(join(DIST, a))).length, 0);
  assert.ok(gzipped < 100_000, `the portal's assets are ${gzipped} bytes gzipped`);

  // Out of the build folder, however the path is spelt: nothing of the project comes back.
  const pkg = readFileSync(join(ROOT, 'package.json'), 'utf8');
  const refused = [
    '/%2e%2e/package.json',
    '/%2E%2E/package.json',
    '/..%2fpackage.json',
    '/assets/..%2f..%2fpackage.json',
    '/assets/..%2F..%2Fpackage.json',
    '/assets/%2e%2e%2f%2e%2e%2fpackage.json',
    '/assets/..%5c..%5cpackage.json',
    '/assets/%2e%2e',
    '/assets/.',
    '/assets/',
    '/assets/..',
    '/assets/x%00.js',
    '/assets/../../package.json',
    '/package.json',
    '/web/dist/index.html',
    '/index.html/../package.json',
    '/src/main.tsx',
    '/web/src/main.tsx',
    '/node_modules/react/package.json',
    '/gateways/gw/nodes',
    '/gateways/gw/nodes/n/x',
    '/runs/r/tasks',
    '/no-such-page',
    '/api/v1/no-such-route',
    '/api/v1/gateways/gw/no-such',
  ];
  for (const path of refused) {
    const r = await raw(svc.url, path);
    assert.ok(r.status === 404 || r.status === 400, `${path}: ${r.status}`);
    assert.match(r.type, /^application\/json/, `${path} answers a problem, not a page`);
    assert.notEqual(r.body, index, path);
    assert.ok(!r.body.includes('"devDependencies"') && !r.body.includes(pkg.slice(0, 40)), path);
  }
  // Pages are for GET only.
  for (const method of ['POST', 'PUT', 'DELETE']) {
    const r = await raw(svc.url, '/', method);
    assert.equal(r.status, 404, method);
    assert.notEqual(r.body, index);
  }
  // The API is untouched: its OpenAPI document lists no portal path.
  const doc = await svc.api.call('GET', '/api/v1/openapi.json');
  assert.ok(Object.keys(doc.paths).every((p: string) => p.startsWith('/api/v1/')));
});

test('without a build folder, / says how to build the portal and the API still works', async (t) => {
  const missing = join(tempDir(t, 'ferry-no-portal-'), 'dist');
  const svc = await startService(t, { config: { portalDir: missing } });
  for (const page of ['/', '/gateways/gw', '/runs/x']) {
    const r = await raw(svc.url, page);
    assert.equal(r.status, 503, page);
    assert.match(r.type, /^text\/html/);
    assert.match(r.body, /The Ferry portal is not built/);
    assert.match(r.body, /npm run build:web/);
  }
  assert.equal((await raw(svc.url, '/assets/index.js')).status, 404);
  assert.equal((await raw(svc.url, '/healthz')).status, 200);
  assert.deepEqual(await svc.api.call('GET', '/api/v1/gateways'), { gateways: [] });
});

test('scripts/build-web.mjs builds when the build is missing or older than web/, skips when fresh, and does nothing without web/', async (t) => {
  // A copy of the sources (the shared web/dist of the tests is left alone), with the project's packages.
  const copy = tempDir(t, 'ferry-web-build-');
  cpSync(join(ROOT, 'web'), join(copy, 'web'), {
    recursive: true,
    filter: (src) => !/\/web\/(dist|\.dist-[^/]*)(\/|$)/.test(src),
  });
  mkdirSync(join(copy, 'scripts'));
  cpSync(join(ROOT, 'scripts/build-web.mjs'), join(copy, 'scripts/build-web.mjs'));
  symlinkSync(join(ROOT, 'node_modules'), join(copy, 'node_modules'));
  const build = () => execFileSync(NODE, [join(copy, 'scripts/build-web.mjs')], { encoding: 'utf8' });

  assert.match(build(), /built into/);
  const index = readFileSync(join(copy, 'web/dist/index.html'), 'utf8');
  assert.match(index, /<div id="root"><\/div>/);
  assert.match(index, /src="\/assets\/index-[\w-]+\.js"/);
  assert.match(build(), /up to date/);
  // An edited source: built again.
  const later = new Date(Date.now() + 5000);
  utimesSync(join(copy, 'web/src/format.ts'), later, later);
  assert.match(build(), /built into/);
  assert.deepEqual(
    readdirSync(join(copy, 'web')).filter((f) => f.startsWith('.dist')),
    [],
    'no temporary build folder left',
  );
  // A copy of Ferry without web/ (a production install): nothing to do, exit 0.
  rmSync(join(copy, 'web'), { recursive: true });
  assert.match(build(), /no web\/ sources/);
});

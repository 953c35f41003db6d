/**
 * API tokens and roles against a real service and a real node: what each role may do (for real: an
 * operator runs a pipeline and drains a node, a reader cannot), every route of the OpenAPI document
 * called with every kind of caller (admin, operator, reader, a revoked token, no token, a node token)
 * and allowed or refused exactly as its `x-ferry-roles` says, a revoked token refused at its very next
 * request (also on another service replica sharing the PostgreSQL store), and the audit log: one entry
 * per changing request of a known token, refused or not, with no secret in it.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import pg from 'pg';
import { readFileSync } from 'node:fs';
import { ROOT, startService, type ServiceHandle } from './helpers/cluster.ts';
import { registrationBody } from './helpers/agent-bodies.ts';
import { fsLinkedServices, gatewayWithNodes, makeFiles, waitRun } from './helpers/scenario.ts';

const PG_URL = 'postgres://postgres@127.0.0.1:5432/test';
const VERSION = (JSON.parse(readFileSync(`${ROOT}/package.json`, 'utf8')) as { version: string }).version;
const METHODS = ['get', 'put', 'post', 'delete', 'patch'];

type Answer = { status: number; body: any };

/**
 * The policy (issue 18): every read is a reader's, but for these; every change an admin's, but for
 * these, an operator's. Node and public routes are neither.
 */
const ADMIN_READS = ['GET /api/v1/gateways/{name}/keys', 'GET /api/v1/tokens', 'GET /api/v1/audit'];
const OPERATOR_CHANGES = [
  'POST /api/v1/pipelines/{name}/runs',
  'POST /api/v1/gateways/{name}/nodes/{node}/drain',
  'POST /api/v1/gateways/{name}/nodes/{node}/resume',
  'PUT /api/v1/gateways/{name}/nodes/{node}/limit',
  'POST /api/v1/linked-services/{name}/test',
  // Moves no secret through the service: the dispatcher re-sends what the nodes hold.
  'POST /api/v1/gateways/{name}/resync-credentials',
];

function policy(method: string, template: string, documented: string[]): string[] {
  if (documented.includes('anyone') || documented.includes('node')) return documented;
  const key = `${method} ${template}`;
  if (method === 'GET') return ADMIN_READS.includes(key) ? ['admin'] : ['admin', 'operator', 'reader'];
  return OPERATOR_CHANGES.includes(key) ? ['admin', 'operator'] : ['admin'];
}
type Operation = { 'x-ferry-roles'?: string[]; description?: string };

/** Makes a token with the admin token; returns the token itself. */
async function makeToken(svc: ServiceHandle, name: string, role: string): Promise<string> {
  const res = await svc.api.raw('POST', '/api/v1/tokens', { name, role });
  assert.equal(res.status, 201, JSON.stringify(res.body));
  assert.equal(res.body.role, role);
  assert.equal(res.body.createdBy, 'bootstrap');
  return res.body.token as string;
}

const sha256 = (s: string): string => createHash('sha256').update(s).digest('hex');

test('roles: each route allows or refuses every kind of caller exactly as documented', async (t) => {
  const g = await gatewayWithNodes(t, 1);
  const svc = g.svc;
  const api = svc.api;
  makeFiles(g.root, 'in', 4, (i) => 500 + i);
  await fsLinkedServices(g, { in: 'src', out: 'dst' }, { in: 'in', out: 'out' });
  await api.call('PUT', '/api/v1/pipelines', {
    name: 'p',
    activities: [{ name: 'a', source: { linkedService: 'src' }, sink: { linkedService: 'dst' } }],
  });
  const keys = await api.call('GET', `/api/v1/gateways/${g.gateway}/keys`);
  // A node token of a node that never runs: DELETE /api/v1/agent/self may delete it.
  const fake = await api.raw(
    'POST',
    '/api/v1/agent/register',
    registrationBody(keys.key1, 'fake', VERSION),
    '',
  );
  assert.equal(fake.status, 201, JSON.stringify(fake.body));

  const tokens: Record<string, string> = {
    admin: await makeToken(svc, 'walk-admin', 'admin'),
    operator: await makeToken(svc, 'walk-operator', 'operator'),
    reader: await makeToken(svc, 'walk-reader', 'reader'),
  };
  const as = (who: string, method: string, path: string, body?: unknown): Promise<Answer> =>
    api.raw(method, path, body, tokens[who]);

  await t.test('the token list shows neither the tokens nor their hashes', async () => {
    const list = await api.raw('GET', '/api/v1/tokens');
    assert.equal(list.status, 200);
    const text = JSON.stringify(list.body);
    for (const token of Object.values(tokens)) {
      assert.equal(text.includes(token), false);
      assert.equal(text.includes(sha256(token)), false);
    }
    assert.deepEqual(
      list.body.tokens.map((x: { name: string; role: string }) => `${x.name}:${x.role}`),
      ['walk-admin:admin', 'walk-operator:operator', 'walk-reader:reader'],
    );
    // Used since it was made (the request above was the bootstrap's; this one is walk-reader's).
    await as('reader', 'GET', '/api/v1/gateways');
    const after = await api.call('GET', '/api/v1/tokens');
    const reader = after.tokens.find((x: { name: string }) => x.name === 'walk-reader');
    assert.ok(reader.lastUsedAt, 'last use recorded');
  });

  await t.test('for real: an operator runs a pipeline and drains a node; a reader only reads', async () => {
    // A reader reads everything but the token list and the audit log.
    for (const path of [
      '/api/v1/gateways',
      `/api/v1/gateways/${g.gateway}`,
      `/api/v1/gateways/${g.gateway}/nodes`,
      `/api/v1/gateways/${g.gateway}/events`,
      `/api/v1/gateways/${g.gateway}/nodes/node-1/metrics`,
      `/api/v1/gateways/${g.gateway}/nodes/node-1/metrics?window=24h`,
      `/api/v1/gateways/${g.gateway}/advice`,
      `/api/v1/gateways/${g.gateway}/advice?window=7d`,
      '/api/v1/linked-services',
      '/api/v1/linked-services/src',
      '/api/v1/pipelines',
      '/api/v1/pipelines/p',
      '/api/v1/runs',
    ])
      assert.equal((await as('reader', 'GET', path)).status, 200, path);
    const refused = await as('reader', 'POST', '/api/v1/pipelines/p/runs');
    assert.equal(refused.status, 403);
    assert.equal(refused.body.code, 'forbidden');
    assert.equal(
      refused.body.message,
      'POST /api/v1/pipelines/{name}/runs needs the operator role or higher; the token "walk-reader" has the reader role',
    );
    assert.match(refused.body.hint, /--role operator/);
    for (const path of ['/api/v1/tokens', '/api/v1/audit', `/api/v1/gateways/${g.gateway}/keys`])
      for (const who of ['reader', 'operator'])
        assert.equal((await as(who, 'GET', path)).status, 403, `${who} GET ${path}`);

    const started = await as('operator', 'POST', '/api/v1/pipelines/p/runs');
    assert.equal(started.status, 201, JSON.stringify(started.body));
    assert.equal((await waitRun(g, started.body.id)).status, 'succeeded');
    const node = `/api/v1/gateways/${g.gateway}/nodes/node-1`;
    const drained = await as('operator', 'POST', `${node}/drain`);
    assert.equal(drained.status, 200);
    assert.ok(['draining', 'drained'].includes(drained.body.drain), JSON.stringify(drained.body));
    assert.equal((await as('operator', 'POST', `${node}/resume`)).body.drain, null);
    const limited = await as('operator', 'PUT', `${node}/limit`, { limit: 3 });
    assert.equal(limited.body.jobsLimit, 3);
    assert.equal(limited.body.limitIsDefault, false);
    assert.equal((await as('operator', 'PUT', `${node}/limit`, { limit: null })).status, 200);
    const tested = await as('operator', 'POST', '/api/v1/linked-services/src/test', {});
    assert.equal(tested.status, 200);
    assert.equal(tested.body.ok, true, JSON.stringify(tested.body));
    // ... but changes nothing an admin owns.
    for (const [method, path, body] of [
      ['POST', '/api/v1/gateways', { name: 'gw2' }],
      ['DELETE', `${node}`, undefined],
      ['DELETE', '/api/v1/linked-services/src', undefined],
      ['PUT', '/api/v1/pipelines', { name: 'p2', activities: [] }],
      ['POST', '/api/v1/tokens', { name: 'mine', role: 'admin' }],
    ] as const) {
      const res = await as('operator', method, path, body);
      assert.equal(res.status, 403, `${method} ${path}`);
      assert.match(res.body.message, /needs the admin role; the token "walk-operator" has the operator role/);
    }
    assert.equal((await api.call('GET', `/api/v1/gateways/${g.gateway}/nodes`)).nodes.length, 2);
  });

  await t.test('a revoked token is refused at its very next request', async () => {
    tokens.revoked = await makeToken(svc, 'walk-revoked', 'admin');
    assert.equal((await as('revoked', 'GET', '/api/v1/gateways')).status, 200);
    assert.equal((await api.raw('DELETE', '/api/v1/tokens/walk-revoked')).status, 204);
    const next = await as('revoked', 'GET', '/api/v1/gateways');
    assert.equal(next.status, 401);
    assert.equal(next.body.code, 'unauthorized');
    assert.equal(next.body.message, 'this token was revoked');
    assert.equal((await as('revoked', 'POST', '/api/v1/gateways', { name: 'late' })).status, 401);
    const list = await api.call('GET', '/api/v1/tokens');
    const row = list.tokens.find((x: { name: string }) => x.name === 'walk-revoked');
    assert.equal(row.revokedBy, 'bootstrap');
    assert.ok(row.revokedAt);
    // Revoked twice, or the bootstrap token (not a stored token): refused, with the reason.
    assert.equal((await api.raw('DELETE', '/api/v1/tokens/walk-revoked')).status, 409);
    const bootstrap = await api.raw('DELETE', '/api/v1/tokens/bootstrap');
    assert.equal(bootstrap.status, 404);
    assert.match(bootstrap.body.hint, /FERRY_ADMIN_TOKEN/);
  });

  let userChanges = 0;
  await t.test('every route of the document with every kind of caller', async () => {
    const doc = (await api.call('GET', '/api/v1/openapi.json')) as {
      paths: Record<string, Record<string, Operation>>;
    };
    const callers: [string, Record<string, string> | undefined][] = [
      ['admin', undefined],
      ['operator', undefined],
      ['reader', undefined],
      ['revoked', undefined],
      ['no token', undefined],
      ['node', undefined],
    ];
    const tokenOf = (who: string): string =>
      who === 'no token' ? '' : who === 'node' ? (fake.body.nodeToken as string) : tokens[who]!;
    // Reads name things that exist (and must answer 200 when allowed); anything else names things
    // that do not, so that an allowed call changes nothing (a 400 or 404 from the route itself).
    const existing: Record<string, string> = { node: 'node-1', which: 'key1' };
    const ops: { method: string; template: string; op: Operation }[] = [];
    for (const [template, methods] of Object.entries(doc.paths))
      for (const [method, op] of Object.entries(methods))
        if (METHODS.includes(method)) ops.push({ method: method.toUpperCase(), template, op });
    // The node's own delete ends its token: last.
    ops.sort(
      (a, b) => Number(a.template === '/api/v1/agent/self') - Number(b.template === '/api/v1/agent/self'),
    );
    const runId = (await api.call('GET', '/api/v1/runs')).runs[0].id as string;
    const failures: string[] = [];

    let calls = 0;
    for (const { method, template, op } of ops) {
      const allowed = op['x-ferry-roles'];
      assert.ok(Array.isArray(allowed) && allowed.length > 0, `${method} ${template}: x-ferry-roles`);
      if (JSON.stringify(policy(method, template, allowed)) !== JSON.stringify(allowed))
        failures.push(
          `${method} ${template}: documented ${allowed.join(', ')}, the policy says ${policy(method, template, allowed).join(', ')}`,
        );
      if (template.startsWith('/api/v1/agent/') !== (allowed.includes('node') || allowed.includes('anyone')))
        failures.push(`${method} ${template}: documented ${allowed.join(', ')}`);
      const read = method === 'GET';
      const path = template.replace(/\{(\w+)\}/g, (_m, p: string) => {
        if (!read) return p === 'which' ? 'key1' : 'no-such';
        if (p === 'id') return runId;
        if (p === 'name')
          return template.startsWith('/api/v1/linked-services')
            ? 'src'
            : template.startsWith('/api/v1/pipelines')
              ? 'p'
              : g.gateway;
        return existing[p] ?? 'no-such';
      });
      const userRoute = !allowed.includes('node') && !allowed.includes('anyone');
      if (userRoute && !read) userChanges++;
      for (const [who] of callers) {
        const res = await api.raw(method, path, read || method === 'DELETE' ? undefined : {}, tokenOf(who));
        calls++;
        const at = `${method} ${path} as ${who} (documented: ${allowed.join(', ')})`;
        const isAllowed = allowed.includes('anyone') || allowed.includes(who);
        if (isAllowed) {
          if (userRoute && read) {
            if (res.status !== 200) failures.push(`${at}: ${res.status}, want 200`);
          } else if (userRoute) {
            // The route itself ran and refused the made-up name or the empty body.
            if (![400, 404].includes(res.status) || /^no route/.test(String(res.body?.message)))
              failures.push(`${at}: ${res.status} ${JSON.stringify(res.body)}, want the route's own 400/404`);
          } else if ([401, 403].includes(res.status) || res.status >= 500)
            failures.push(`${at}: ${res.status} ${JSON.stringify(res.body)}, want it let through`);
          continue;
        }
        const role = ['admin', 'operator', 'reader'].includes(who) && userRoute;
        if (role) {
          const need = allowed[allowed.length - 1];
          const want = new RegExp(
            `^${method} ${template.replace(/[{}]/g, '\\$&')} needs the ${need} role.*; the token "walk-${who}" has the ${who} role$`,
          );
          if (res.status !== 403 || res.body?.code !== 'forbidden' || !want.test(res.body?.message))
            failures.push(`${at}: ${res.status} ${JSON.stringify(res.body)}, want 403 forbidden`);
        } else if (res.status !== 401 || res.body?.code !== 'unauthorized')
          failures.push(`${at}: ${res.status} ${JSON.stringify(res.body)}, want 401`);
      }
    }
    assert.deepEqual(failures, []);
    assert.ok(ops.length >= 39, `${ops.length} operations`);
    assert.equal(calls, ops.length * callers.length);
  });

  await t.test('the audit log: every change by a known token, refused or not, and no secret', async () => {
    const password = 'S3cret-never-in-the-audit-log';
    await api.call('POST', '/api/v1/linked-services', {
      name: 'db',
      type: 'postgres',
      gateway: g.gateway,
      properties: { host: '127.0.0.1', port: 5432, database: 'x', user: 'u', password },
    });
    const all = (await api.call('GET', '/api/v1/audit?limit=1000')).entries as any[];
    assert.equal(JSON.stringify(all).includes(password), false);
    const ls = all.find((e) => e.route === '/api/v1/linked-services' && e.details.name === 'db');
    assert.deepEqual(ls.details, { name: 'db', type: 'postgres', gateway: g.gateway });
    assert.equal(ls.actor, 'bootstrap');
    assert.equal(ls.role, 'admin');
    assert.equal(ls.status, 201);

    // The walk: each walking token's every call to a changing user route is there once, with its
    // status; reads, node routes and refused tokens are not.
    assert.ok(all.every((e) => e.method !== 'GET' && !e.route.startsWith('/api/v1/agent/')));
    // The revoked token's one change came after its revoke: refused (401) and not recorded.
    assert.equal(all.filter((e) => e.actor === 'walk-revoked').length, 0);
    const readerEntries = (await api.call('GET', '/api/v1/audit?actor=walk-reader&limit=1000')).entries;
    // The reader's refused run in the second subtest, and one refused call per changing route in the walk.
    assert.equal(readerEntries.length, userChanges + 1);
    assert.ok(readerEntries.every((e: { status: number }) => e.status === 403));
    const adminEntries = (await api.call('GET', '/api/v1/audit?actor=walk-admin&limit=1000')).entries;
    assert.equal(adminEntries.length, userChanges);
    assert.ok(adminEntries.every((e: { status: number }) => e.status === 400 || e.status === 404));
    const opEntries = all.filter((e) => e.actor === 'walk-operator');
    const run = opEntries.find((e) => e.route === '/api/v1/pipelines/{name}/runs' && e.status === 201);
    assert.deepEqual(run.params, { name: 'p' });
    assert.match(run.details.runId, /^run_/);
    const drain = opEntries.find((e) => e.route.endsWith('/drain') && e.status === 200);
    assert.deepEqual(drain.params, { name: g.gateway, node: 'node-1' });
    assert.ok(opEntries.some((e) => e.route === '/api/v1/gateways' && e.status === 403));
    const revoke = all.find(
      (e) => e.method === 'DELETE' && e.params.name === 'walk-revoked' && e.status === 204,
    );
    assert.equal(revoke.route, '/api/v1/tokens/{name}');

    // Filters.
    const two = (await api.call('GET', '/api/v1/audit?limit=2')).entries;
    assert.deepEqual(two, all.slice(0, 2));
    const since = (await api.call('GET', `/api/v1/audit?since=${encodeURIComponent(ls.at)}`)).entries;
    assert.ok(since.length >= 1 && since.every((e: { at: string }) => e.at >= ls.at));
    assert.ok(since.length < all.length);
    assert.equal((await api.raw('GET', '/api/v1/audit?since=yesterday')).status, 400);
  });
});

test('a token revoked through one service replica is refused at once by another', async (t) => {
  const schema = `access_${process.pid}_${Date.now()}`;
  t.after(async () => {
    const c = new pg.Client(PG_URL);
    await c.connect();
    await c.query(`DROP SCHEMA IF EXISTS "${schema}" CASCADE`);
    await c.end();
  });
  const a = await startService(t, { store: PG_URL, storeSchema: schema });
  const b = await startService(t, { store: PG_URL, storeSchema: schema });
  const token = await makeToken(a, 'ci', 'reader');
  // Used on both replicas, many times: whatever either keeps, it keeps it now.
  for (let i = 0; i < 5; i++)
    for (const svc of [a, b])
      assert.equal((await svc.api.raw('GET', '/api/v1/gateways', undefined, token)).status, 200);
  assert.equal((await a.api.raw('DELETE', '/api/v1/tokens/ci')).status, 204);
  for (const svc of [b, a]) {
    const res = await svc.api.raw('GET', '/api/v1/gateways', undefined, token);
    assert.equal(res.status, 401, svc.url);
    assert.equal(res.body.message, 'this token was revoked');
  }
  // The audit log is shared too: the revoke made on A reads the same on B.
  const entries = (await b.api.call('GET', '/api/v1/audit')).entries;
  assert.deepEqual(
    entries.map((e: { method: string; route: string; params: object }) => [e.method, e.route, e.params]),
    [
      ['DELETE', '/api/v1/tokens/{name}', { name: 'ci' }],
      ['POST', '/api/v1/tokens', {}],
    ],
  );
});

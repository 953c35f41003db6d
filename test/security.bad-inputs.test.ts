/**
 * Ferry tried as an attacker would, against one real service and two real nodes: every route of the
 * OpenAPI document under every spelling of its path that a router might decode or normalise
 * (percent-encoded, double-slashed, dot segments, trailing slash, mixed case), with no token and with
 * the wrong kind of token; malformed tokens and bodies; bad node-facing messages; bad registrations
 * (versions, unknown fields, keys, then too many wrong keys); the node-to-node port unsigned, signed
 * wrongly, stale, replayed, with forged epochs and oversized bodies; slow clients on both ports. Each
 * must get a clear 4xx (or have its connection closed) and change nothing: the gateways, keys, nodes,
 * linked services, pipelines and runs read the same afterwards, the nodes keep their epoch, and a real
 * run still succeeds.
 */
import { test, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import { request } from 'node:http';
import { connect } from 'node:net';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { eventually, tempDir, PUBLIC_KEYS } from './helpers/cluster.ts';
import { heartbeatBody, registrationBody } from './helpers/agent-bodies.ts';
import {
  keyOf,
  mintLease,
  peerRequest,
  peerUrlOf,
  planDispatch,
  registrationOf,
  statusOf,
  strangerKey,
  type Signer,
} from './helpers/peer.ts';
import { gatewayWithNodes, type Gateway } from './helpers/scenario.ts';

interface Answer {
  status: number;
  body: any;
  headers: Record<string, string | string[] | undefined>;
}

/** One HTTP request with the path sent exactly as given (fetch would normalise dot segments). */
function raw(
  base: string,
  method: string,
  path: string,
  o: { headers?: Record<string, string>; body?: string | Buffer } = {},
): Promise<Answer> {
  const url = new URL(base);
  return new Promise((resolve, reject) => {
    const req = request(
      {
        host: url.hostname,
        port: url.port,
        method,
        path,
        agent: false, // a fresh connection each: one the server closed is never reused
        headers: {
          ...(o.body === undefined ? {} : { 'content-type': 'application/json' }),
          ...o.headers,
        },
      },
      (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () => {
          const text = Buffer.concat(chunks).toString('utf8');
          let body: unknown = text;
          try {
            body = text ? JSON.parse(text) : undefined;
          } catch {
            /* not JSON: kept as text */
          }
          resolve({ status: res.statusCode ?? 0, body, headers: res.headers });
        });
      },
    );
    req.on('error', reject);
    req.end(o.body);
  });
}

interface Case {
  what: string;
  method: string;
  path: string;
  headers?: Record<string, string>;
  body?: string;
  /** The status wanted; any 4xx when absent. */
  status?: number | undefined;
}

const bearer = (token: string): Record<string, string> => ({ authorization: `Bearer ${token}` });

/** Every spelling of `path` that names the same route to a lenient router, and some that do not. */
function variants(path: string): string[] {
  const segs = path.split('/').slice(1); // ['api', 'v1', ...]
  const enc = (s: string): string =>
    [...s].map((c) => `%${c.charCodeAt(0).toString(16).padStart(2, '0')}`).join('');
  const at = (i: number, f: (s: string) => string): string =>
    '/' + segs.map((s, j) => (j === i ? f(s) : s)).join('/');
  const last = segs.length - 1;
  return [
    path,
    `/%61${path.slice(2)}`, // /%61pi/v1/...
    at(1, (s) => `%${s.charCodeAt(0).toString(16).toUpperCase()}${s.slice(1)}`), // /api/%761/...
    at(last, enc), // the last segment, every character encoded
    at(last, (s) => s.replace(/[a-z]/, (c) => `%${c.charCodeAt(0).toString(16)}`)),
    `/${path}`, // //api/v1/...
    path.replace('/v1/', '//v1/'),
    path.replace('/v1/', '/x/../v1/'),
    path.replace('/v1/', '/x/%2e%2e/v1/'),
    path.replace('/v1/', '/./v1/'),
    `${path}/`,
    path.toUpperCase(),
    path.replace('/api/', '/API/'),
    path.replace('/v1/', '/V1/'),
    `${path}%00`,
    `${path}?access=public`,
  ];
}

/** What an attacker must not be able to change or see changed: read with the admin token. */
async function snapshot(g: Gateway): Promise<unknown> {
  const get = (p: string): Promise<any> => g.svc.api.call('GET', p);
  const gateways = (await get('/api/v1/gateways')).gateways.map((x: any) => ({
    name: x.name,
    maxNodes: x.maxNodes,
  }));
  const nodes = (await get(`/api/v1/gateways/${g.gateway}/nodes`)).nodes.map((n: any) => ({
    name: n.name,
    limit: n.limit,
    draining: n.draining ?? n.drain,
  }));
  return {
    gateways,
    keys: await get(`/api/v1/gateways/${g.gateway}/keys`),
    nodes,
    linkedServices: (await get('/api/v1/linked-services')).linkedServices,
    pipelines: await get('/api/v1/pipelines'),
    runs: ((await get('/api/v1/runs')).runs as { id: string }[]).map((r) => r.id),
  };
}

/** The shared set-up: a gateway with one node, two linked services, a pipeline and one finished run. */
interface World {
  g: Gateway;
  nodeToken: string;
  runId: string;
  /** Everything read with the admin token before the attacks. */
  before: unknown;
}

async function world(t: TestContext): Promise<World> {
  // Short client timeouts on the service, so its slow clients are cut within the test.
  const g = await gatewayWithNodes(t, 2, {
    service: { config: { headersTimeoutMs: 2000, requestTimeoutMs: 4000 } },
  });
  const nodeToken = JSON.parse(readFileSync(join(g.nodes[0]!.dataDir, 'node.json'), 'utf8')).nodeToken;
  const out = tempDir(t);
  for (const [name, root] of [
    ['in', g.root],
    ['out', out],
  ] as const)
    await g.svc.api.call('POST', '/api/v1/linked-services', {
      name,
      type: 'filesystem',
      gateway: g.gateway,
      properties: { root },
    });
  await g.svc.api.call('PUT', '/api/v1/pipelines', {
    name: 'p',
    activities: [{ name: 'a', source: { linkedService: 'in' }, sink: { linkedService: 'out' } }],
  });
  const runId = (await g.svc.api.call('POST', '/api/v1/pipelines/p/runs')).id;
  await waitEnded(g, runId);
  return { g, nodeToken, runId, before: await snapshot(g) };
}

async function waitEnded(g: Gateway, runId: string): Promise<string> {
  return eventually('the run to end', async () => {
    const r = await g.svc.api.call('GET', `/api/v1/runs/${runId}`);
    return r.status === 'succeeded' || r.status === 'failed' ? (r.status as string) : undefined;
  });
}

/**
 * Opens `count` connections that send `first` and then nothing more; resolves with how many the
 * server closed within `withinMs`.
 */
async function slowClients(base: string, first: string[], withinMs: number): Promise<number> {
  const url = new URL(base);
  const closed = await Promise.all(
    first.map(
      (text) =>
        new Promise<boolean>((resolve) => {
          const socket = connect(Number(url.port), url.hostname);
          const timer = setTimeout(() => {
            socket.destroy();
            resolve(false);
          }, withinMs);
          socket.on('error', () => undefined);
          socket.resume(); // read what the server answers, so its close is seen
          socket.on('close', () => {
            clearTimeout(timer);
            resolve(true);
          });
          socket.on('connect', () => socket.write(text));
        }),
    ),
  );
  return closed.filter(Boolean).length;
}

/** The openings slow clients send: a request line, part of the headers, a promised body never sent. */
function slowOpenings(host: string): string[] {
  return [
    '',
    'G',
    'GET / HTTP/1.1\r\n',
    `GET /healthz HTTP/1.1\r\nHost: ${host}\r\n`,
    `GET /healthz HTTP/1.1\r\nHost: ${host}\r\nX-Slow: a`,
    `POST /v1/dispatch HTTP/1.1\r\nHost: ${host}\r\n`,
    `POST /api/v1/agent/register HTTP/1.1\r\nHost: ${host}\r\nContent-Type: application/json\r\nContent-Length: 100\r\n\r\n{`,
    `POST /api/v1/agent/register HTTP/1.1\r\nHost: ${host}\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n5\r\n{"a":`,
    `PUT /api/v1/pipelines HTTP/1.1\r\nHost: ${host}\r\nContent-Length: 10\r\n\r\n`,
    `GET /healthz HTTP/1.1\r\nHost: ${host}\r\n\r\nGET /healthz HTTP/1.1\r\n`,
  ];
}

test('bad inputs get a clear 4xx and change nothing', async (t) => {
  const w = await world(t);
  const { g, nodeToken } = w;
  /** Bad requests sent, per surface, for the summary at the end. */
  const sent = { walk: 0, rest: 0, nodePort: 0, slow: 0 };
  const params: Record<string, string> = { name: g.gateway, node: 'node-1', which: 'key1', id: w.runId };

  await t.test(
    'every route under every spelling of its path, without a token or with the wrong kind',
    async () => {
      const spec = (await g.svc.api.call('GET', '/api/v1/openapi.json')) as {
        paths: Record<string, Record<string, { security?: unknown[]; tags?: string[] }>>;
      };
      let tried = 0;
      const failures: string[] = [];
      for (const [template, ops] of Object.entries(spec.paths)) {
        for (const [method, op] of Object.entries(ops)) {
          const open = Array.isArray(op.security) && op.security.length === 0;
          if (open) continue; // node registration: its refusals are tried below
          const isAgent = template.startsWith('/api/v1/agent/');
          const path = template.replace(/\{(\w+)\}/g, (_m, p: string) => {
            const v = params[p];
            assert.ok(v, `a value for {${p}} in ${template}`);
            return v;
          });
          // A body that would change something if it were taken.
          const body = JSON.stringify(
            method === 'post' && template === '/api/v1/gateways'
              ? { name: 'intruder' }
              : method === 'put' && template.endsWith('/limit')
                ? { limit: 1 }
                : method === 'patch'
                  ? { maxNodes: 1 }
                  : {},
          );
          const tokens: [string, Record<string, string>][] = [
            ['no token', {}],
            isAgent ? ['the admin token', bearer(g.svc.token)] : ['a node token', bearer(nodeToken)],
          ];
          for (const spelling of variants(path)) {
            for (const [who, headers] of tokens) {
              for (const m of method === 'get' ? ['GET', 'HEAD'] : [method.toUpperCase()]) {
                const res = await raw(g.svc.url, m, spelling, {
                  headers,
                  ...(m === 'GET' || m === 'HEAD' || m === 'DELETE' ? {} : { body }),
                });
                tried++;
                sent.walk++;
                const ok =
                  spelling === path && who === 'no token'
                    ? res.status === 401
                    : [401, 404].includes(res.status);
                if (!ok) failures.push(`${m} ${spelling} with ${who}: ${res.status}`);
                else if (m !== 'HEAD' && typeof res.body?.code !== 'string')
                  failures.push(`${m} ${spelling} with ${who}: no problem body`);
              }
            }
          }
        }
      }
      assert.deepEqual(failures, []);
      assert.ok(tried > 500, `tried ${tried}`);
    },
  );

  /** Sends each case and checks it got a 4xx (the one expected, when given) with a problem body. */
  const expectRefused = async (cases: Case[], base = g.svc.url): Promise<void> => {
    const failures: string[] = [];
    if (base === g.svc.url) sent.rest += cases.length;
    else sent.nodePort += cases.length;
    for (const c of cases) {
      let res: Answer;
      try {
        res = await raw(base, c.method, c.path, {
          headers: { ...(c.body === undefined ? {} : { 'content-type': 'application/json' }), ...c.headers },
          ...(c.body === undefined ? {} : { body: c.body }),
        });
      } catch (err) {
        failures.push(`${c.what}: ${(err as Error).message}`);
        continue;
      }
      const want = c.status ?? 'a 4xx';
      const ok = c.status === undefined ? res.status >= 400 && res.status < 500 : res.status === c.status;
      if (!ok) failures.push(`${c.what}: got ${res.status}, want ${want}: ${JSON.stringify(res.body)}`);
      else if (
        res.status !== 431 &&
        (typeof res.body?.code !== 'string' || typeof res.body?.message !== 'string')
      )
        failures.push(`${c.what}: no problem body (${JSON.stringify(res.body)})`);
    }
    assert.deepEqual(failures, []);
  };

  await t.test('malformed and wrong tokens', async () => {
    const admin = g.svc.token;
    const authorizations: [string, string][] = [
      ['empty', ''],
      ['scheme only', 'Bearer'],
      ['scheme and a space', 'Bearer '],
      ['lower-case scheme', `bearer ${admin}`],
      ['Basic', `Basic ${Buffer.from(`admin:${admin}`).toString('base64')}`],
      ['admin token with a suffix', `Bearer ${admin}x`],
      ['admin token cut short', `Bearer ${admin.slice(0, -1)}`],
      ['admin token upper-cased', `Bearer ${admin.toUpperCase()}`],
      ['the gateway key as a token', `Bearer ${(w.before as { keys: { key1: string } }).keys.key1}`],
      ['8 KiB token', `Bearer ${'a'.repeat(8192)}`],
      ['a node token', `Bearer ${nodeToken}`],
    ];
    const cases: Case[] = [];
    for (const [what, authorization] of authorizations) {
      cases.push({
        what: `GET gateways, ${what}`,
        method: 'GET',
        path: '/api/v1/gateways',
        headers: { authorization },
        status: 401,
      });
      cases.push({
        what: `POST gateways, ${what}`,
        method: 'POST',
        path: '/api/v1/gateways',
        headers: { authorization },
        body: JSON.stringify({ name: 'intruder' }),
        status: 401,
      });
    }
    cases.push(
      { what: 'token in the query', method: 'GET', path: `/api/v1/gateways?token=${admin}`, status: 401 },
      {
        what: 'token as a cookie',
        method: 'GET',
        path: '/api/v1/gateways',
        headers: { cookie: `token=${admin}` },
        status: 401,
      },
      {
        what: '100 KiB of headers',
        method: 'GET',
        path: '/api/v1/gateways',
        headers: { authorization: `Bearer ${'a'.repeat(100_000)}` },
        status: 431,
      },
    );
    await expectRefused(cases);
  });

  await t.test('malformed bodies with the admin token', async () => {
    const auth = bearer(g.svc.token);
    const post = (what: string, path: string, body: string, status?: number, method = 'POST'): Case => ({
      what,
      method,
      path,
      headers: auth,
      ...(body === '' ? {} : { body }),
      ...(status === undefined ? {} : { status }),
    });
    const gw = '/api/v1/gateways';
    const deep = `${'['.repeat(50_000)}${']'.repeat(50_000)}`;
    const ls = (properties: unknown, extra: Record<string, unknown> = {}): string =>
      JSON.stringify({ name: 'ls-bad', type: 'filesystem', gateway: g.gateway, properties, ...extra });
    const pipeline = (p: unknown): Case =>
      post(`pipeline ${JSON.stringify(p).slice(0, 60)}`, '/api/v1/pipelines', JSON.stringify(p), 400, 'PUT');
    const activity = (source: unknown, sink: unknown, extra: Record<string, unknown> = {}): Case =>
      pipeline({ name: 'p', activities: [{ name: 'a', source, sink, ...extra }] });
    await expectRefused([
      post('not JSON', gw, '{', 400),
      post('JSON null', gw, 'null', 400),
      post('a JSON array', gw, '[]', 400),
      post('a JSON string', gw, '"intruder"', 400),
      post('a number', gw, '42', 400),
      post('deeply nested arrays', gw, deep, 400),
      post('empty name', gw, JSON.stringify({ name: '' }), 400),
      post('name with a slash', gw, JSON.stringify({ name: '../etc' }), 400),
      post('name with NUL', gw, JSON.stringify({ name: 'a\u0000b' }), 400),
      post('name with a newline', gw, JSON.stringify({ name: 'a\nb' }), 400),
      post('1,000-character name', gw, JSON.stringify({ name: 'a'.repeat(1000) }), 400),
      post('name not a string', gw, JSON.stringify({ name: ['intruder'] }), 400),
      post('unknown field', gw, JSON.stringify({ name: 'intruder', admin: true }), 400),
      post('__proto__', gw, '{"name":"intruder","__proto__":{"admin":true}}', 400),
      post(
        'constructor.prototype',
        gw,
        '{"name":"intruder","constructor":{"prototype":{"admin":true}}}',
        400,
      ),
      post('negative maxNodes', gw, JSON.stringify({ name: 'intruder', maxNodes: -1 }), 400),
      post('fractional maxNodes', gw, JSON.stringify({ name: 'intruder', maxNodes: 1.5 }), 400),
      post('huge maxNodes', gw, '{"name":"intruder","maxNodes":1e308}', 400),
      post('an existing gateway', gw, JSON.stringify({ name: g.gateway }), 409),
      {
        what: 'text/plain body',
        method: 'POST',
        path: gw,
        headers: { ...auth, 'content-type': 'text/plain' },
        body: 'name=intruder',
        status: 400,
      },
      {
        what: 'form body',
        method: 'POST',
        path: gw,
        headers: { ...auth, 'content-type': 'application/x-www-form-urlencoded' },
        body: 'name=intruder',
        status: 400,
      },
      post('update: negative maxNodes', `${gw}/${g.gateway}`, JSON.stringify({ maxNodes: -5 }), 400, 'PATCH'),
      post('update: unknown gateway', `${gw}/nope`, JSON.stringify({ maxNodes: 5 }), 404, 'PATCH'),
      post('regenerate key3', `${gw}/${g.gateway}/keys/key3/regenerate`, '{}', 400),
      post('limit 0', `${gw}/${g.gateway}/nodes/node-1/limit`, JSON.stringify({ limit: 0 }), 400, 'PUT'),
      post(
        'limit as text',
        `${gw}/${g.gateway}/nodes/node-1/limit`,
        JSON.stringify({ limit: '8' }),
        400,
        'PUT',
      ),
      post('limit 10^9', `${gw}/${g.gateway}/nodes/node-1/limit`, JSON.stringify({ limit: 1e9 }), 400, 'PUT'),
      post(
        'limit of an unknown node',
        `${gw}/${g.gateway}/nodes/nope/limit`,
        JSON.stringify({ limit: 2 }),
        404,
        'PUT',
      ),
      post('drain an unknown node', `${gw}/${g.gateway}/nodes/nope/drain`, '{}', 404),
      post('delete an unknown node', `${gw}/${g.gateway}/nodes/nope`, '', 404, 'DELETE'),
      post('delete an unknown gateway', `${gw}/nope`, '', 404, 'DELETE'),
      post(
        'linked service: unknown type',
        '/api/v1/linked-services',
        JSON.stringify({ name: 'ls-bad', type: 'ftp', gateway: g.gateway, properties: {} }),
        400,
      ),
      post('linked service: relative root', '/api/v1/linked-services', ls({ root: 'relative/dir' }), 400),
      post('linked service: root not a string', '/api/v1/linked-services', ls({ root: 7 }), 400),
      post(
        'linked service: unknown property',
        '/api/v1/linked-services',
        ls({ root: '/tmp', shell: 'rm -rf /' }),
        400,
      ),
      post(
        'linked service: unknown gateway',
        '/api/v1/linked-services',
        JSON.stringify({ name: 'ls-bad', type: 'filesystem', gateway: 'nope', properties: { root: '/tmp' } }),
        404,
      ),
      post('linked service: properties an array', '/api/v1/linked-services', ls([]), 400),
      post(
        'linked service: unknown field',
        '/api/v1/linked-services',
        ls({ root: '/tmp' }, { secret: 'x' }),
        400,
      ),
      pipeline({}),
      pipeline({ name: 'p' }),
      pipeline({ name: 'p', activities: [] }),
      pipeline({ name: 'bad name!', activities: [] }),
      pipeline({ name: 'p', activities: 'a' }),
      activity({}, { linkedService: 'out' }),
      activity({ linkedService: 'in' }, {}),
      activity({ linkedService: 'in', filesPerTask: 0 }, { linkedService: 'out' }),
      activity({ linkedService: 'in', filesPerTask: -1 }, { linkedService: 'out' }),
      activity({ linkedService: 'in' }, { linkedService: 'out' }, { retry: { maxAttempts: 0 } }),
      activity({ linkedService: 'in' }, { linkedService: 'out' }, { maxBytesPerSecond: -1 }),
      activity({ linkedService: 'in' }, { linkedService: 'out' }, { shell: 'x' }),
      activity({ linkedService: 'in', table: 'x; drop table y' }, { linkedService: 'out' }),
      { ...activity({ linkedService: 'nope' }, { linkedService: 'out' }), status: undefined },
      { what: 'run list limit 0', method: 'GET', path: '/api/v1/runs?limit=0', headers: auth, status: 400 },
      {
        what: 'run list limit text',
        method: 'GET',
        path: '/api/v1/runs?limit=x',
        headers: auth,
        status: 400,
      },
      { what: 'an unknown run', method: 'GET', path: '/api/v1/runs/run_nope', headers: auth, status: 404 },
      {
        what: 'run an unknown pipeline',
        method: 'POST',
        path: '/api/v1/pipelines/nope/runs',
        headers: auth,
        status: 404,
      },
    ]);
  });

  await t.test('bad node-facing messages with a node token', async () => {
    const auth = bearer(nodeToken);
    const agent = (what: string, path: string, body: unknown, status?: number): Case => ({
      what,
      method: 'POST',
      path: `/api/v1/agent/${path}`,
      headers: auth,
      body: typeof body === 'string' ? body : JSON.stringify(body),
      ...(status === undefined ? {} : { status }),
    });
    const hb = { ...heartbeatBody(), defaultLimit: 2, peerPort: 1 };
    const metrics = hb.metrics;
    await expectRefused([
      agent('heartbeat: no public keys', 'heartbeat', { ...hb, signPublicKey: undefined }, 400),
      agent(
        'heartbeat: a signing key not base64',
        'heartbeat',
        { ...hb, signPublicKey: '!'.repeat(60) },
        400,
      ),
      agent(
        'heartbeat: a signing key of random bytes',
        'heartbeat',
        { ...hb, signPublicKey: 'A'.repeat(60) },
        400,
      ),
      agent(
        'heartbeat: an X25519 key to sign with',
        'heartbeat',
        { ...hb, signPublicKey: PUBLIC_KEYS.sealPublicKey },
        400,
      ),
      agent(
        'heartbeat: an Ed25519 key to seal to',
        'heartbeat',
        { ...hb, sealPublicKey: PUBLIC_KEYS.signPublicKey },
        400,
      ),
      agent('heartbeat: a 4 KiB key', 'heartbeat', { ...hb, sealPublicKey: 'A'.repeat(4096) }, 400),
      agent('heartbeat: not JSON', 'heartbeat', '{"version":', 400),
      agent('heartbeat: empty', 'heartbeat', {}, 400),
      agent('heartbeat: negative CPU', 'heartbeat', { ...hb, metrics: { ...metrics, cpuPercent: -1 } }, 400),
      agent('heartbeat: running not a list', 'heartbeat', { ...hb, running: 'att_1' }, 400),
      agent('heartbeat: port 70000', 'heartbeat', { ...hb, peerPort: 70_000 }, 400),
      agent('heartbeat: limit 0', 'heartbeat', { ...hb, defaultLimit: 0 }, 400),
      agent('heartbeat: empty peer host', 'heartbeat', { ...hb, peerHost: '' }, 400),
      agent('claim: epoch as text', 'claim', { epoch: '1', slots: [], waitMs: 0 }, 400),
      agent('claim: waitMs past the cap', 'claim', { epoch: 1, slots: [], waitMs: 1e9 }, 400),
      agent(
        'claim: negative free slots',
        'claim',
        { epoch: 1, slots: [{ nodeId: 'x', free: -1 }], waitMs: 0 },
        400,
      ),
      agent('claim: a stale epoch', 'claim', { epoch: 0, slots: [], waitMs: 0 }, 409),
      agent('claim: a forged future epoch', 'claim', { epoch: 2_147_483_647, slots: [], waitMs: 0 }, 409),
      agent('progress: unknown attempt', 'attempts/att_nope/progress', { rows: 1, bytes: 1 }, 404),
      agent('progress: negative rows', 'attempts/att_nope/progress', { rows: -1, bytes: 1 }, 400),
      agent(
        'complete: unknown attempt',
        'attempts/att_nope/complete',
        { outcome: 'failed', error: { code: 'x', message: 'x', retryable: false } },
        404,
      ),
      agent('complete: unknown outcome', 'attempts/att_nope/complete', { outcome: 'maybe' }, 400),
      agent('reports: none', 'reports', { reports: [] }, 400),
      agent(
        'reports: 501',
        'reports',
        { reports: Array.from({ length: 501 }, () => ({ attemptId: 'a', progress: { rows: 0, bytes: 0 } })) },
        400,
      ),
      agent('release: no reason', 'attempts/att_nope/release', {}, 400),
    ]);
  });

  await t.test('bad registrations, then too many wrong keys from one address', async () => {
    const good = registrationBody(w.g.key, 'intruder');
    const reg = (what: string, body: unknown, status?: number, path = 'register'): Case => ({
      what: `${path}: ${what}`,
      method: 'POST',
      path: `/api/v1/agent/${path}`,
      body: typeof body === 'string' ? body : JSON.stringify(body),
      ...(status === undefined ? {} : { status }),
    });
    const versions = [
      'latest',
      '1',
      '1.0',
      '01.0.0',
      '1.0.0-',
      'v1.0.0',
      '1.0.0.0',
      ' 1.0.0',
      `1.0.0-${'a'.repeat(64)}`,
      '',
    ];
    await expectRefused([
      ...versions.map((version) => reg(`version ${JSON.stringify(version)}`, { ...good, version }, 400)),
      reg('an unknown field', { ...good, admin: true }, 400),
      reg('a prototype key', `{"__proto__":{"admin":true},${JSON.stringify(good).slice(1)}`, 400),
      reg('no key', { ...good, key: undefined }, 400),
      reg('an empty key', { ...good, key: '' }, 400),
      reg('a name with a slash', { ...good, name: '../node-1' }, 400),
      reg('a name with a space', { ...good, name: 'node 1' }, 400),
      reg('a 129-character name', { ...good, name: 'n'.repeat(129) }, 400),
      reg('port 0', { ...good, peerPort: 0 }, 400),
      reg('port 65536', { ...good, peerPort: 65_536 }, 400),
      reg('no cores', { ...good, cores: 0 }, 400),
      reg('limit 0', { ...good, defaultLimit: 0 }, 400),
      reg('limit past the cap', { ...good, defaultLimit: 1_000_000 }, 400),
      reg('tls as text', { ...good, tls: 'yes' }, 400),
      reg('no public keys', { ...good, signPublicKey: undefined, sealPublicKey: undefined }, 400),
      reg('a signing key of random bytes', { ...good, signPublicKey: 'A'.repeat(60) }, 400),
      reg('an X25519 key to sign with', { ...good, signPublicKey: PUBLIC_KEYS.sealPublicKey }, 400),
      reg('a name taken', { ...good, name: 'node-1' }, 403),
      reg('an unknown field', { key: w.g.key, admin: true }, 400, 'key-gateway'),
      reg('no key', {}, 400, 'key-gateway'),
    ]);
    // Wrong keys: refused, then the address is limited (429 with Retry-After), the right key too.
    const wrong: Case[] = Array.from({ length: 10 }, (_, i) =>
      reg(
        `wrong key ${i + 1}`,
        i % 2 ? { ...good, key: `nope-${i}` } : { key: `nope-${i}` },
        403,
        i % 2 ? 'register' : 'key-gateway',
      ),
    );
    await expectRefused(wrong);
    const limited = [
      await raw(g.svc.url, 'POST', '/api/v1/agent/register', {
        body: JSON.stringify({ ...good, key: 'nope-x' }),
      }),
      await raw(g.svc.url, 'POST', '/api/v1/agent/register', { body: JSON.stringify(good) }),
      await raw(g.svc.url, 'POST', '/api/v1/agent/key-gateway', { body: JSON.stringify({ key: w.g.key }) }),
    ];
    for (const r of limited) {
      assert.equal(r.status, 429, JSON.stringify(r.body));
      assert.equal(r.body.code, 'rate_limited');
      assert.ok(Number(r.headers['retry-after']) >= 1, `Retry-After ${String(r.headers['retry-after'])}`);
    }
  });

  await t.test(
    'the node-to-node port: unsigned, signed wrongly, stale, replayed, forged epochs, too big',
    async () => {
      // The worker is attacked; the dispatcher is the member whose key signs (it holds the real lease).
      const [target, member] =
        statusOf(g.nodes[0]!.dataDir).role === 'dispatcher'
          ? [g.nodes[1]!, g.nodes[0]!]
          : [g.nodes[0]!, g.nodes[1]!];
      const base = await peerUrlOf(target.dataDir);
      const to = registrationOf(target.dataDir);
      const from = registrationOf(member.dataDir);
      const epochBefore = statusOf(target.dataDir).epoch;
      const as: Signer = {
        key: keyOf(from),
        gatewayId: to.gatewayId,
        nodeId: from.nodeId,
        toNodeId: to.nodeId,
      };
      const peer = (what: string, r: ReturnType<typeof peerRequest>, status: number): Case => ({
        what,
        method: r.method,
        path: r.path,
        headers: r.headers,
        ...(r.body === undefined ? {} : { body: r.body }),
        status,
      });
      const ping = (what: string, sign: Signer | undefined, status = 401, path = '/v1/ping'): Case =>
        peer(`ping: ${what}`, peerRequest('GET', path, undefined, sign), status);
      const dispatch = (what: string, body: unknown, sign: Signer | undefined, status = 401): Case =>
        peer(`dispatch: ${what}`, peerRequest('POST', '/v1/dispatch', body, sign), status);
      // A member's signed ping is taken (the baseline), and the same bytes again are a replay.
      const valid = peerRequest('GET', '/v1/ping', undefined, as);
      const first = await raw(base, 'GET', valid.path, { headers: valid.headers });
      assert.equal(first.status, 200, JSON.stringify(first.body));
      const epoch = epochBefore;
      const realLease = mintLease(g.svc.dataDir, {
        gatewayId: to.gatewayId,
        dispatcherNodeId: from.nodeId,
        epoch,
      });
      const forged = 2_147_483_647;
      const cases: Case[] = [
        peer('ping: the same signed request again (replay)', valid, 401),
        ...[
          '/v1/ping',
          '/v1/%70ing',
          '//v1/ping',
          '/v1/ping/',
          '/V1/PING',
          '/v1/./ping',
          '/x/../v1/ping',
          '/v1/ping%00',
          '/v1/ping?x=1',
        ].map((path) => ping(`unsigned ${path}`, undefined, 401, path)),
        ping('another gateway id', { ...as, gatewayId: 'gw_other' }),
        ping('for another node', { ...as, toNodeId: from.nodeId }),
        ping('two minutes old', { ...as, time: Date.now() - 120_000 }),
        ping('two minutes ahead', { ...as, time: Date.now() + 120_000 }),
        ping('a malformed nonce', { ...as, nonce: 'not-hex' }),
        ping('signed for another path', { ...as, signedPath: '/v1/dispatch' }),
        ping("a stranger's key in a member's name", { ...as, key: strangerKey() }),
        ping('a stranger in its own name', { ...as, key: strangerKey(), nodeId: 'node_stranger' }),
        ping("the target's own id", { ...as, nodeId: to.nodeId, key: keyOf(to) }),
        {
          what: 'ping: a garbage signature',
          method: 'GET',
          path: '/v1/ping',
          headers: { ...peerRequest('GET', '/v1/ping', undefined, as).headers, 'x-ferry-signature': 'AAAA' },
          status: 401,
        },
        ping('a signed request to an unknown route', as, 404, '/v1/shutdown'),
        dispatch('unsigned', planDispatch(to.nodeId, forged, 'att_forged_0'), undefined),
        dispatch('a forged epoch without a lease', planDispatch(to.nodeId, forged, 'att_forged_1'), as),
        dispatch(
          'a forged epoch with the current lease',
          planDispatch(to.nodeId, forged, 'att_forged_2', realLease),
          as,
        ),
        dispatch(
          'a forged epoch with a lease naming the worker',
          planDispatch(
            to.nodeId,
            forged,
            'att_forged_3',
            mintLease(g.svc.dataDir, { gatewayId: to.gatewayId, dispatcherNodeId: to.nodeId, epoch: forged }),
          ),
          as,
        ),
        dispatch('a garbage lease', planDispatch(to.nodeId, forged, 'att_forged_4', 'x.y'), as),
        dispatch('the current epoch without a lease', planDispatch(to.nodeId, epoch, 'att_forged_5'), as),
        dispatch(
          'an older epoch with a lease for it',
          planDispatch(
            to.nodeId,
            epoch - 1,
            'att_old',
            mintLease(g.svc.dataDir, {
              gatewayId: to.gatewayId,
              dispatcherNodeId: from.nodeId,
              epoch: epoch - 1,
            }),
          ),
          as,
          409,
        ),
        dispatch('a tampered body', planDispatch(to.nodeId, epoch, 'att_tampered', realLease), {
          ...as,
          signedBody: '{}',
        }),
        dispatch('not JSON', '{"epoch":', as, 400),
        dispatch('not a dispatch', { hello: 'world' }, as, 400),
        {
          what: 'dispatch: a body larger than the route takes, by its Content-Length',
          method: 'POST',
          path: '/v1/dispatch',
          headers: {
            ...peerRequest('POST', '/v1/dispatch', '', as).headers,
            'content-length': String(64 * 1024 * 1024),
          },
          body: '',
          status: 400,
        },
        {
          what: 'ping: a body where none is taken',
          method: 'GET',
          path: '/v1/ping',
          headers: { ...peerRequest('GET', '/v1/ping', undefined, as).headers, 'content-length': '1024' },
          body: 'x'.repeat(1024),
          status: 400,
        },
      ];
      await expectRefused(cases, base);
      assert.equal(statusOf(target.dataDir).epoch, epochBefore, 'the forged epochs changed nothing');
    },
  );

  await t.test('slow clients on the service and the node port are cut', async () => {
    const nodeBase = await peerUrlOf(g.nodes[0]!.dataDir);
    const openings = slowOpenings('127.0.0.1');
    sent.slow += 2 * openings.length;
    const [svcClosed, nodeClosed] = await Promise.all([
      slowClients(g.svc.url, openings, 15_000),
      slowClients(nodeBase, openings, 25_000),
    ]);
    assert.equal(svcClosed, openings.length, 'the service closed every slow connection');
    assert.equal(nodeClosed, openings.length, 'the node closed every slow connection');
  });

  assert.deepEqual(await snapshot(g), w.before);
  t.diagnostic(
    `bad requests: ${sent.walk} in the route walk, ${sent.rest} more to the service, ${sent.nodePort} to the node port, ${sent.slow} slow clients`,
  );
  assert.ok(sent.rest + sent.nodePort + sent.slow >= 150, 'at least 150 besides the route walk');
  // The gateway still works: a real run succeeds on the nodes that were attacked.
  const again = (await g.svc.api.call('POST', '/api/v1/pipelines/p/runs')).id;
  assert.equal(await waitEnded(g, again), 'succeeded');
});

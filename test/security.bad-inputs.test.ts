/**
 * Ferry tried as an attacker would, against one real service and node: every route of the OpenAPI
 * document under every spelling of its path that a router might decode or normalise (percent-encoded,
 * double-slashed, dot segments, trailing slash, mixed case), with no token and with the wrong kind of
 * token; malformed tokens and bodies; bad node-facing messages. Each must get a clear 4xx and change
 * nothing: the gateways, keys, nodes, linked services, pipelines and runs read the same afterwards.
 */
import { test, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import { request } from 'node:http';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { eventually, tempDir } from './helpers/cluster.ts';
import { gatewayWithNodes, type Gateway } from './helpers/scenario.ts';

interface Answer {
  status: number;
  body: any;
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
          resolve({ status: res.statusCode ?? 0, body });
        });
      },
    );
    req.on('error', reject);
    req.end(o.body);
  });
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
  const g = await gatewayWithNodes(t, 1);
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
  await eventually('the run to end', async () => {
    const r = await g.svc.api.call('GET', `/api/v1/runs/${runId}`);
    return r.status === 'succeeded' || r.status === 'failed';
  });
  return { g, nodeToken, runId, before: await snapshot(g) };
}

test('bad inputs get a clear 4xx and change nothing', async (t) => {
  const w = await world(t);
  const { g, nodeToken } = w;
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

  assert.deepEqual(await snapshot(g), w.before);
});

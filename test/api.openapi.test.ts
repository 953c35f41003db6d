/**
 * The OpenAPI document (/api/v1/openapi.json) against an independent OpenAPI validator
 * (@seriousme/openapi-schema-validator), and real responses of a real service (a gateway of two
 * nodes that ran a pipeline, a fake node on the agent routes) against the schemas the document gives
 * them, checked with ajv: every field a response carries is documented and every documented field
 * has its documented type, problems included.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { Validator } from '@seriousme/openapi-schema-validator';
import { Ajv2020 } from 'ajv/dist/2020.js';
import addFormats from 'ajv-formats';
import { ROOT, eventually, startService, type ServiceHandle } from './helpers/cluster.ts';
import { heartbeatBody, registrationBody } from './helpers/agent-bodies.ts';
import { fsLinkedServices, gatewayWithNodes, makeFiles, waitRun } from './helpers/scenario.ts';

type Doc = {
  openapi: string;
  paths: Record<string, Record<string, Operation>>;
  components: { schemas: Record<string, unknown> };
};
type Operation = {
  operationId?: string;
  requestBody?: { content: Record<string, { schema: unknown }> };
  responses: Record<string, { description: string; content?: Record<string, { schema: unknown }> }>;
};

const METHODS = ['get', 'put', 'post', 'delete', 'patch'];
const PACKAGE_VERSION = (JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')) as { version: string })
  .version;

async function openapi(svc: ServiceHandle): Promise<Doc> {
  const res = await svc.api.raw('GET', '/api/v1/openapi.json', undefined, '');
  assert.equal(res.status, 200);
  return res.body as Doc;
}

/**
 * A copy of the document in which every object schema that lists its properties refuses any other
 * (unless it says what others it takes, as the maps of store properties do): a response field the
 * document does not describe fails the check.
 */
function closed<T>(node: T): T {
  if (Array.isArray(node)) return node.map(closed) as T;
  if (node === null || typeof node !== 'object') return node;
  const o = Object.fromEntries(Object.entries(node).map(([k, v]) => [k, closed(v)]));
  if (o.type === 'object' && o.properties && !('additionalProperties' in o) && !('patternProperties' in o))
    o.additionalProperties = false;
  return o as T;
}

/** Checks a real response against what the document says `method path` answers with that status. */
function responseChecker(doc: Doc) {
  const ajv = new Ajv2020({ strict: false, allErrors: true });
  addFormats.default(ajv);
  const id = 'https://ferry.invalid/openapi.json';
  ajv.addSchema({ ...closed(doc), $id: id });
  const pointer = (...parts: string[]) =>
    parts.map((p) => p.replaceAll('~', '~0').replaceAll('/', '~1')).join('/');
  const seen = new Set<string>();
  const check = (method: string, path: string, res: { status: number; body: unknown }): void => {
    const op = doc.paths[path]?.[method.toLowerCase()];
    assert.ok(op, `${method} ${path} is in the document`);
    const key = String(res.status) in op.responses ? String(res.status) : `${String(res.status)[0]}XX`;
    const documented = op.responses[key];
    assert.ok(documented, `${method} ${path}: status ${res.status} is documented`);
    seen.add(`${method} ${path} ${key}`);
    if (!documented.content) {
      assert.equal(res.body, undefined, `${method} ${path} ${res.status} has no body`);
      return;
    }
    const validate = ajv.getSchema(
      `${id}#/${pointer('paths', path, method.toLowerCase(), 'responses', key, 'content', 'application/json', 'schema')}`,
    );
    assert.ok(validate);
    const ok = validate(res.body);
    assert.ok(
      ok,
      `${method} ${path} ${res.status}: ${JSON.stringify(validate.errors, null, 1)}\n${JSON.stringify(res.body).slice(0, 2000)}`,
    );
  };
  /**
   * Whether a request body is one the document accepts for `method path` (the document as it is:
   * request schemas say themselves which fields they refuse).
   */
  const raw = new Ajv2020({ strict: false, allErrors: true });
  addFormats.default(raw);
  raw.addSchema({ ...doc, $id: id });
  const accepts = (method: string, path: string, body: unknown): boolean => {
    const validate = raw.getSchema(
      `${id}#/${pointer('paths', path, method.toLowerCase(), 'requestBody', 'content', 'application/json', 'schema')}`,
    );
    assert.ok(validate, `${method} ${path} documents its request body`);
    return validate(body) === true;
  };
  return { check, seen, accepts };
}

test('the document is valid OpenAPI, and every operation has named request and response schemas', async (t) => {
  const svc = await startService(t);
  const doc = await openapi(svc);

  const result = await new Validator().validate(doc);
  assert.ok(result.valid, JSON.stringify(result.errors, null, 1));
  assert.equal(doc.openapi, '3.1.0');

  // Every component is a valid JSON Schema (2020-12, OpenAPI 3.1's dialect), with no unknown keyword.
  const strict = new Ajv2020({ strict: true });
  addFormats.default(strict);
  strict.addSchema({ $id: 'https://ferry.invalid/c.json', components: doc.components }, undefined, false);
  for (const name of Object.keys(doc.components.schemas))
    assert.ok(
      strict.validateSchema(doc.components.schemas[name] as object),
      `${name}: ${strict.errorsText()}`,
    );

  let operations = 0;
  const ids = new Set<string>();
  for (const [path, ops] of Object.entries(doc.paths)) {
    for (const [method, op] of Object.entries(ops)) {
      if (!METHODS.includes(method)) continue;
      operations++;
      const at = `${method.toUpperCase()} ${path}`;
      // A generated client names its methods after the operation ids.
      assert.match(String(op.operationId), /^[a-z][A-Za-z]+$/, `${at}: an operationId`);
      assert.ok(!ids.has(op.operationId!), `${at}: operationId ${op.operationId} is unique`);
      ids.add(op.operationId!);
      const statuses = Object.keys(op.responses);
      const success = statuses.filter((s) => s.startsWith('2'));
      assert.equal(success.length, 1, `${at}: one success status (${statuses.join(', ')})`);
      for (const s of [...success, '4XX', '5XX']) {
        const r = op.responses[s];
        assert.ok(r, `${at}: ${s} is documented`);
        assert.notEqual(r.description, 'Default Response', `${at} ${s}: described`);
        if (s === '204') {
          assert.equal(r.content, undefined, `${at}: 204 has no body`);
          continue;
        }
        const schema = r.content?.['application/json']?.schema as { $ref?: string; anyOf?: unknown[] };
        assert.ok(schema?.$ref ?? schema?.anyOf, `${at} ${s}: a named schema (${JSON.stringify(schema)})`);
      }
      assert.deepEqual(
        (op.responses['4XX']!.content!['application/json']!.schema as { $ref: string }).$ref,
        '#/components/schemas/Problem',
      );
      if (method === 'delete') assert.deepEqual(success, ['204'], `${at} answers 204`);
      // Who may call it (src/service/roles.ts), in the extension and in words.
      const callers = (op as { 'x-ferry-roles'?: string[] })['x-ferry-roles'];
      assert.ok(Array.isArray(callers) && callers.length > 0, `${at}: x-ferry-roles`);
      assert.match(
        String((op as { description?: string }).description),
        /Allowed roles: |Open: |Called by nodes/,
      );
      if (op.requestBody) {
        const body = op.requestBody.content['application/json']?.schema as { $ref?: string };
        assert.match(String(body?.$ref), /^#\/components\/schemas\/\w+$/, `${at}: a named request body`);
      }
    }
  }
  assert.ok(operations >= 30, `${operations} operations`);

  // The pipeline body is the pipeline, not `{}`.
  const put = doc.paths['/api/v1/pipelines']!.put!;
  assert.equal(
    (put.requestBody!.content['application/json']!.schema as { $ref: string }).$ref,
    '#/components/schemas/PipelineSpec',
  );
  const spec = doc.components.schemas.PipelineSpec as { required: string[]; properties: object };
  assert.deepEqual([...spec.required].sort(), ['activities', 'name']);
  assert.ok('activities' in spec.properties);

  const problem = doc.components.schemas.Problem as { required: string[]; properties: object };
  assert.deepEqual([...problem.required].sort(), ['code', 'message', 'retryable']);
  assert.deepEqual(Object.keys(problem.properties).sort(), ['code', 'hint', 'message', 'retryable']);

  // The agent routes are in the document too.
  for (const p of ['register', 'key-gateway', 'heartbeat', 'claim', 'reports', 'self'])
    assert.ok(doc.paths[`/api/v1/agent/${p}`], `/api/v1/agent/${p}`);
});

test('real responses of a real service match their documented schemas, problems included', async (t) => {
  const g = await gatewayWithNodes(t, 2);
  const api = g.svc.api;
  const doc = await openapi(g.svc);
  const { check, seen, accepts } = responseChecker(doc);
  const call = async (method: string, path: string, url: string, body?: unknown, token?: string) => {
    const res = await api.raw(method, url, body, token ?? api.token);
    check(method, path, res);
    // What the service took, the document accepts; what it refused as malformed, the document refuses.
    if (body !== undefined && res.status < 300)
      assert.ok(
        accepts(method, path, body),
        `${method} ${path}: the document accepts ${JSON.stringify(body)}`,
      );
    if (body !== undefined && res.status === 400)
      assert.ok(
        !accepts(method, path, body),
        `${method} ${path}: the document refuses ${JSON.stringify(body)}`,
      );
    return res;
  };

  // Gateways and nodes.
  const made = await call('POST', '/api/v1/gateways', '/api/v1/gateways', { name: 'other', maxNodes: 3 });
  assert.equal(made.status, 201);
  await call('GET', '/api/v1/gateways', '/api/v1/gateways');
  const shown = await call('GET', '/api/v1/gateways/{name}', `/api/v1/gateways/${g.gateway}`);
  assert.equal(shown.body.nodeList.length, 2);
  await call('PATCH', '/api/v1/gateways/{name}', '/api/v1/gateways/other', { maxNodes: null });
  await call('GET', '/api/v1/gateways/{name}/keys', `/api/v1/gateways/${g.gateway}/keys`);
  await call(
    'POST',
    '/api/v1/gateways/{name}/keys/{which}/regenerate',
    '/api/v1/gateways/other/keys/key2/regenerate',
  );
  const nodes = await call('GET', '/api/v1/gateways/{name}/nodes', `/api/v1/gateways/${g.gateway}/nodes`);
  assert.ok(nodes.body.nodes.every((n: { cpuPercent: unknown }) => typeof n.cpuPercent === 'number'));
  await call(
    'PUT',
    '/api/v1/gateways/{name}/nodes/{node}/limit',
    `/api/v1/gateways/${g.gateway}/nodes/node-2/limit`,
    {
      limit: 3,
    },
  );
  await call(
    'PUT',
    '/api/v1/gateways/{name}/nodes/{node}/limit',
    `/api/v1/gateways/${g.gateway}/nodes/node-2/limit`,
    {
      limit: null,
    },
  );
  await call(
    'POST',
    '/api/v1/gateways/{name}/nodes/{node}/drain',
    `/api/v1/gateways/${g.gateway}/nodes/node-2/drain`,
  );
  await call(
    'POST',
    '/api/v1/gateways/{name}/nodes/{node}/resume',
    `/api/v1/gateways/${g.gateway}/nodes/node-2/resume`,
  );
  await call('GET', '/api/v1/gateways/{name}/events', `/api/v1/gateways/${g.gateway}/events`);
  // The metrics history's first samples come once the service's start-up grace is over.
  const metricsPath = '/api/v1/gateways/{name}/nodes/{node}/metrics';
  const history = await eventually('a metrics history point', async () => {
    const res = await call('GET', metricsPath, `/api/v1/gateways/${g.gateway}/nodes/node-1/metrics`);
    return res.body.points.length > 0 && res;
  });
  assert.equal(history.body.resolutionSeconds, 10);
  await call('GET', metricsPath, `/api/v1/gateways/${g.gateway}/nodes/node-1/metrics?window=24h`);
  assert.equal(
    (await call('GET', metricsPath, `/api/v1/gateways/${g.gateway}/nodes/node-1/metrics?window=1y`)).status,
    400,
  );
  assert.equal(
    (await call('GET', metricsPath, `/api/v1/gateways/${g.gateway}/nodes/no-such/metrics`)).status,
    404,
  );
  const advice = await call('GET', '/api/v1/gateways/{name}/advice', `/api/v1/gateways/${g.gateway}/advice`);
  assert.ok(advice.body.advice.length > 0);

  // Linked services, a pipeline and a run of it.
  makeFiles(g.root, 'in/data', 6, (i) => 1000 + i * 100);
  await fsLinkedServices(g, { in: 'src', out: 'dst' }, { in: 'in', out: 'out' });
  await call('POST', '/api/v1/linked-services', '/api/v1/linked-services', {
    name: 'pg',
    type: 'postgres',
    gateway: g.gateway,
    properties: { host: '127.0.0.1', port: 5432, database: 'x', user: 'u', password: 'secret' },
  });
  const ls = await call('GET', '/api/v1/linked-services', '/api/v1/linked-services');
  assert.equal(ls.body.linkedServices.length, 3);
  const pg = await call('GET', '/api/v1/linked-services/{name}', '/api/v1/linked-services/pg');
  assert.deepEqual(pg.body.secrets, ['password']);
  const tested = await call(
    'POST',
    '/api/v1/linked-services/{name}/test',
    '/api/v1/linked-services/src/test',
    { write: true, node: 'node-2' },
  );
  assert.equal(tested.status, 200);
  assert.equal(tested.body.ok, true, JSON.stringify(tested.body));
  const refused = await call(
    'POST',
    '/api/v1/linked-services/{name}/test',
    '/api/v1/linked-services/pg/test',
    {
      node: 'nope',
    },
  );
  assert.equal(refused.status, 404);
  const spec = {
    name: 'copy-files',
    description: 'files to files',
    activities: [
      {
        name: 'bins',
        source: { linkedService: 'src', path: 'data', glob: '**/*.bin', filesPerTask: 2 },
        sink: { linkedService: 'dst', path: 'copy' },
        retry: { maxAttempts: 3 },
      },
    ],
  };
  const applied = await call('PUT', '/api/v1/pipelines', '/api/v1/pipelines', spec);
  assert.equal(applied.status, 200);
  assert.deepEqual(applied.body.spec, spec, 'the pipeline comes back whole, store options included');
  await call('GET', '/api/v1/pipelines', '/api/v1/pipelines');
  await call('GET', '/api/v1/pipelines/{name}', '/api/v1/pipelines/copy-files');
  const started = await call('POST', '/api/v1/pipelines/{name}/runs', '/api/v1/pipelines/copy-files/runs');
  assert.equal(started.status, 201);
  const done = await waitRun(g, started.body.id);
  assert.equal(done.status, 'succeeded', JSON.stringify(done.error));
  const run = await call('GET', '/api/v1/runs/{id}', `/api/v1/runs/${started.body.id}`);
  assert.equal(run.body.tasks.filter((x: { kind: string }) => x.kind === 'copy').length, 3);
  assert.ok(
    run.body.tasks.some((x: { outputs: unknown[] }) => x.outputs.length > 0),
    'outputs are shown',
  );
  await call('GET', '/api/v1/runs/{id}', `/api/v1/runs/${started.body.id}?tasks=false`);
  await call('GET', '/api/v1/runs', '/api/v1/runs');

  // Problems: not found, no token, a bad body, a conflict.
  const missing = await call('GET', '/api/v1/gateways/{name}', '/api/v1/gateways/nope');
  assert.equal(missing.status, 404);
  const noToken = await call('GET', '/api/v1/gateways', '/api/v1/gateways', undefined, '');
  assert.equal(noToken.status, 401);
  assert.equal(typeof noToken.body.hint, 'string');
  const bad = await call('PUT', '/api/v1/pipelines', '/api/v1/pipelines', { name: 'x', activites: [] });
  assert.equal(bad.status, 400);
  const dup = await call('POST', '/api/v1/gateways', '/api/v1/gateways', { name: 'other' });
  assert.equal(dup.status, 409);

  // The agent routes, as a node of the other gateway calls them.
  const keys = await call('GET', '/api/v1/gateways/{name}/keys', '/api/v1/gateways/other/keys');
  await call('POST', '/api/v1/agent/key-gateway', '/api/v1/agent/key-gateway', { key: keys.body.key1 }, '');
  const reg = await call(
    'POST',
    '/api/v1/agent/register',
    '/api/v1/agent/register',
    registrationBody(keys.body.key1, 'fake', PACKAGE_VERSION),
    '',
  );
  assert.equal(reg.status, 201);
  const token = reg.body.nodeToken as string;
  const hb = await call(
    'POST',
    '/api/v1/agent/heartbeat',
    '/api/v1/agent/heartbeat',
    heartbeatBody(PACKAGE_VERSION),
    token,
  );
  assert.equal(hb.body.role, 'dispatcher');
  await call(
    'POST',
    '/api/v1/agent/claim',
    '/api/v1/agent/claim',
    { epoch: hb.body.epoch, slots: [{ nodeId: reg.body.nodeId, free: 1 }], waitMs: 0 },
    token,
  );
  const reports = await call(
    'POST',
    '/api/v1/agent/reports',
    '/api/v1/agent/reports',
    { reports: [{ attemptId: 'no-such-attempt', progress: { rows: 1, bytes: 1 } }] },
    token,
  );
  assert.equal(reports.body.results[0].ok, false);
  const progress = await call(
    'POST',
    '/api/v1/agent/attempts/{id}/progress',
    '/api/v1/agent/attempts/no-such-attempt/progress',
    { rows: 1, bytes: 1 },
    token,
  );
  assert.ok(progress.status >= 400);
  const answer = await call(
    'POST',
    '/api/v1/agent/connection-tests/{id}',
    '/api/v1/agent/connection-tests/ct_none',
    { read: { ok: true, detail: 'listed', ms: 1 } },
    token,
  );
  assert.equal(answer.status, 404);
  const self = await call('DELETE', '/api/v1/agent/self', '/api/v1/agent/self', undefined, token);
  assert.equal(self.status, 204);

  // API tokens, a refusal by role, and the audit log of it all.
  const minted = await call('POST', '/api/v1/tokens', '/api/v1/tokens', { name: 'watcher', role: 'reader' });
  assert.equal(minted.status, 201);
  const refusedByRole = await call(
    'POST',
    '/api/v1/pipelines/{name}/runs',
    '/api/v1/pipelines/copy-files/runs',
    undefined,
    minted.body.token,
  );
  assert.equal(refusedByRole.status, 403);
  await call('GET', '/api/v1/tokens', '/api/v1/tokens');
  const badRole = await call('POST', '/api/v1/tokens', '/api/v1/tokens', { name: 'x', role: 'root' });
  assert.equal(badRole.status, 400);
  const audit = await call('GET', '/api/v1/audit', '/api/v1/audit?limit=5');
  assert.ok(audit.body.entries.length > 0);
  assert.equal((await call('GET', '/api/v1/audit', '/api/v1/audit?since=yesterday')).status, 400);
  assert.equal((await call('DELETE', '/api/v1/tokens/{name}', '/api/v1/tokens/watcher')).status, 204);

  // Deletes answer 204 with no body.
  for (const [path, url] of [
    ['/api/v1/pipelines/{name}', '/api/v1/pipelines/copy-files'],
    ['/api/v1/linked-services/{name}', '/api/v1/linked-services/pg'],
    ['/api/v1/gateways/{name}', '/api/v1/gateways/other'],
  ] as const)
    assert.equal((await call('DELETE', path, url)).status, 204);

  assert.ok(seen.size >= 30, `${seen.size} documented responses checked`);
});

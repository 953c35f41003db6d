/**
 * Refused when applied, not when a node runs it: a linked service root or a source/sink path holding
 * a NUL byte, and a folder or prefix inside `.ferry-staging` (where files sinks keep unfinished
 * attempts). Each refusal is a 400 naming the field, and nothing is stored. And a node releasing an
 * attempt that does not exist gets a 404, one that already ended a 409, with the attempt unchanged.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { Api, startService, tempDir } from './helpers/cluster.ts';
import { gatewayWithNodes, runPipeline, waitRun } from './helpers/scenario.ts';

test('paths: NUL bytes and .ferry-staging folders are refused at apply time, naming the field', async (t) => {
  const svc = await startService(t);
  await svc.api.call('POST', '/api/v1/gateways', { name: 'gw' });
  const root = tempDir(t);
  const ls = (name: string, type: string, properties: Record<string, unknown>) =>
    svc.api.raw('POST', '/api/v1/linked-services', { name, type, gateway: 'gw', properties });

  // Linked service roots.
  for (const [root_, want] of [
    [`${root}/a\u0000b`, /^properties: root: ".*\\u0000b" holds a NUL byte$/],
    [`${root}/.ferry-staging`, /^properties: root: .*\/\.ferry-staging is inside a \.ferry-staging folder/],
    [`${root}/x/../.ferry-staging/t1.a1`, /is inside a \.ferry-staging folder/],
  ] as const) {
    const r = await ls('bad', 'filesystem', { root: root_ });
    assert.equal(r.status, 400, JSON.stringify(r.body));
    assert.equal(r.body.code, 'bad_request');
    assert.match(r.body.message, want);
  }
  assert.deepEqual((await svc.api.call('GET', '/api/v1/linked-services')).linkedServices, []);

  assert.equal((await ls('in', 'filesystem', { root })).status, 201);
  assert.equal((await ls('out', 'filesystem', { root: join(root, 'out') })).status, 201);
  const s3 = { region: 'us-east-1', bucket: 'b', accessKeyId: 'k', secretAccessKey: 's' };
  assert.equal((await ls('s3', 's3', s3)).status, 201);

  const pipeline = (source: Record<string, unknown>, sink: Record<string, unknown>) => ({
    name: 'p',
    activities: [{ name: 'copy', source, sink }],
  });
  const cases: [string, unknown, RegExp][] = [
    [
      'a sink path with a NUL byte',
      pipeline({ linkedService: 'in' }, { linkedService: 'out', path: 'a\u0000/b' }),
      /^pipeline: activities\/0\/sink\/path: "a\\u0000\/b" holds a NUL byte$/,
    ],
    [
      'a source path with a NUL byte',
      pipeline({ linkedService: 'in', path: 'x\u0000' }, { linkedService: 'out' }),
      /^pipeline: activities\/0\/source\/path: .* holds a NUL byte$/,
    ],
    [
      'a source glob with a NUL byte',
      pipeline({ linkedService: 'in', glob: '*\u0000.csv' }, { linkedService: 'out' }),
      /^pipeline: activities\/0\/source\/glob: .* holds a NUL byte$/,
    ],
    [
      'a sink path inside .ferry-staging',
      pipeline({ linkedService: 'in' }, { linkedService: 'out', path: 'day1/.ferry-staging/t1.a1' }),
      /^pipeline: activities\/0\/sink\/path: day1\/\.ferry-staging\/t1\.a1 is inside a \.ferry-staging folder, where files sinks stage unfinished attempts; publish to another folder$/,
    ],
    [
      'a sink path that is .ferry-staging itself',
      pipeline({ linkedService: 'in' }, { linkedService: 'out', path: './.ferry-staging/' }),
      /^pipeline: activities\/0\/sink\/path: .* is inside a \.ferry-staging folder/,
    ],
    [
      'a sink path that climbs into .ferry-staging',
      pipeline({ linkedService: 'in' }, { linkedService: 'out', path: 'a/../.ferry-staging' }),
      /^pipeline: activities\/0\/sink\/path: .* is inside a \.ferry-staging folder/,
    ],
    [
      'an object store sink prefix inside .ferry-staging',
      pipeline({ linkedService: 'in' }, { linkedService: 's3', prefix: 'out/.ferry-staging/' }),
      /^pipeline: activities\/0\/sink\/prefix: out\/\.ferry-staging\/ is inside a \.ferry-staging folder/,
    ],
    [
      'an object store sink prefix with a NUL byte',
      pipeline({ linkedService: 'in' }, { linkedService: 's3', prefix: 'out\u0000' }),
      /^pipeline: activities\/0\/sink\/prefix: .* holds a NUL byte$/,
    ],
  ];
  for (const [what, spec, want] of cases) {
    const r = await svc.api.raw('PUT', '/api/v1/pipelines', spec);
    assert.equal(r.status, 400, `${what}: ${JSON.stringify(r.body)}`);
    assert.equal(r.body.code, 'bad_request', what);
    assert.match(r.body.message, want, what);
  }
  assert.deepEqual((await svc.api.call('GET', '/api/v1/pipelines')).pipelines, [], 'nothing stored');

  // Names that merely look alike are fine.
  const fine = await svc.api.raw(
    'PUT',
    '/api/v1/pipelines',
    pipeline(
      { linkedService: 'in', path: 'ferry-staging' },
      { linkedService: 'out', path: '.ferry-staging2/x' },
    ),
  );
  assert.equal(fine.status, 200, JSON.stringify(fine.body));
});

test('release: an unknown attempt is 404, a finished one 409, and nothing changes', async (t) => {
  const g = await gatewayWithNodes(t, 1);
  const nodeToken = JSON.parse(readFileSync(join(g.nodes[0]!.dataDir, 'node.json'), 'utf8')).nodeToken;
  mkdirSync(join(g.root, 'in'));
  writeFileSync(join(g.root, 'in', 'a.txt'), 'hello');
  for (const name of ['in', 'out'])
    await g.svc.api.call('POST', '/api/v1/linked-services', {
      name,
      type: 'filesystem',
      gateway: g.gateway,
      properties: { root: join(g.root, name) },
    });
  mkdirSync(join(g.root, 'out'));
  const runId = await runPipeline(g, {
    name: 'p',
    activities: [{ name: 'copy', source: { linkedService: 'in' }, sink: { linkedService: 'out' } }],
  });
  const run = await waitRun(g, runId);
  assert.equal(run.status, 'succeeded');
  const finished = run.tasks[0].attemptList[0];
  assert.equal(finished.status, 'succeeded');

  const node = new Api(g.svc.url, nodeToken);
  const release = (id: string) =>
    node.raw('POST', `/api/v1/agent/attempts/${id}/release`, { reason: 'give it back' });

  const missing = await release('att_nope');
  assert.equal(missing.status, 404, JSON.stringify(missing.body));
  assert.equal(missing.body.code, 'not_found');
  assert.equal(missing.body.message, 'attempt att_nope does not exist');

  const done = await release(finished.id);
  assert.equal(done.status, 409, JSON.stringify(done.body));
  assert.equal(done.body.code, 'conflict');
  assert.equal(
    done.body.message,
    `attempt ${finished.id} is succeeded; only a dispatched or running attempt can be released`,
  );

  const after = await g.svc.api.call('GET', `/api/v1/runs/${runId}`);
  assert.equal(after.status, 'succeeded');
  assert.deepEqual(after.tasks, run.tasks, 'no task or attempt changed');
});

/**
 * Pipelines through the CLI, with the service on the PostgreSQL store: a bad file gets an error that
 * names the field; `ferry pipeline run NAME --wait` shows progress, exits 0 on success and non-zero
 * when the run fails.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import pg from 'pg';
import { cli, tempDir } from './helpers/cluster.ts';
import { fsLinkedServices, gatewayWithNodes, makeFiles, treeDigest } from './helpers/scenario.ts';

const PG_URL = 'postgres://postgres@127.0.0.1:5432/test';

test('pipeline apply/run through the CLI on a PostgreSQL-backed service', async (t) => {
  const schema = `svc_${process.pid}_${Date.now()}`;
  t.after(async () => {
    const c = new pg.Client(PG_URL);
    await c.connect();
    await c.query(`DROP SCHEMA IF EXISTS "${schema}" CASCADE`);
    await c.end();
  });
  const g = await gatewayWithNodes(t, 2, { service: { store: PG_URL, storeSchema: schema } });
  const health = await g.svc.api.call('GET', '/healthz');
  assert.equal(health.store, 'postgres');
  await fsLinkedServices(g, { in: 'src', out: 'dst' }, { in: 'in', out: 'out' });
  makeFiles(join(g.root, 'in'), '', 30, (i) => 1000 + i * 3000);
  await g.svc.api.call('POST', '/api/v1/linked-services', {
    name: 'pgls',
    type: 'postgres',
    gateway: g.gateway,
    properties: { host: '127.0.0.1', database: 'test', user: 'postgres' },
  });
  const dir = tempDir(t);
  const flags = ['--service', g.svc.url, '--token', g.svc.token];
  const write = (name: string, text: string): string => {
    const f = join(dir, name);
    writeFileSync(f, text);
    return f;
  };

  // Bad files: each error names the field (or the file) and nothing is stored.
  const cases: [string, string, RegExp][] = [
    [
      'missing-sink.yaml',
      'name: p\nactivities:\n  - name: a\n    source: { linkedService: src }\n',
      /activities\/0\/sink: is required/,
    ],
    [
      'bad-option.yaml',
      'name: p\nactivities:\n  - name: a\n    source: { linkedService: src, filesPerTask: 0 }\n    sink: { linkedService: dst }\n',
      /activities\/0\/source\/filesPerTask/,
    ],
    [
      'unknown-field.json',
      JSON.stringify({
        name: 'p',
        activities: [
          { name: 'a', source: { linkedService: 'src' }, sink: { linkedService: 'dst' }, colour: 'red' },
        ],
      }),
      /activities\/0\/colour: is not a known field/,
    ],
    [
      'unknown-ls.yaml',
      'name: p\nactivities:\n  - name: a\n    source: { linkedService: nope }\n    sink: { linkedService: dst }\n',
      /activities\/0\/source\/linkedService: linked service "nope" does not exist/,
    ],
    [
      'bad-format.yaml',
      'name: p\nactivities:\n  - name: a\n    source: { linkedService: src }\n    sink: { linkedService: dst, format: xml }\n',
      /activities\/0\/sink\/format/,
    ],
    [
      'bad-mode.yaml',
      'name: p\nactivities:\n  - name: a\n    source: { linkedService: src, format: csv }\n    sink: { linkedService: pgls, table: t, mode: replace }\n',
      /activities\/0\/sink\/mode/,
    ],
    [
      'files-into-table.yaml',
      'name: p\nactivities:\n  - name: a\n    source: { linkedService: src }\n    sink: { linkedService: pgls, table: t }\n',
      /activities\/0\/source\/format: the sink loads a table/,
    ],
    [
      'misspelt.yaml',
      'name: p\nactivites:\n  - name: a\n    source: { linkedService: src }\n    sink: { linkedService: dst }\n',
      /^ferry: pipeline: activites: is not a known field \(did you mean activities\?\)$/m,
    ],
    [
      'many-mistakes.yaml',
      'name: p\nactivities:\n  - name: a\n    source: { linkedService: src, filesPerTask: 0 }\n    sink: { linkedService: dst }\n  - name: b\n    source: { linkedService: nope }\n    sink: { linkedService: dst, fromat: csv }\n',
      /^ferry: pipeline: 3 problems: activities\/0\/source\/filesPerTask: [^;]+; activities\/1\/source\/linkedService: linked service "nope" does not exist; activities\/1\/sink\/fromat: is not a known field \(did you mean format\?\)$/m,
    ],
    ['broken.yaml', 'name: p\nactivities: [\n', /broken\.yaml is not valid YAML/],
    ['no-activities.yaml', 'name: p\nactivities: []\n', /activities/],
  ];
  for (const [file, text, re] of cases) {
    const r = await cli(['pipeline', 'apply', '-f', write(file, text), ...flags]);
    assert.equal(r.code, 1, `${file}: ${r.stdout}${r.stderr}`);
    assert.match(r.stderr, re, file);
    assert.equal(r.stderr.trim().split('\n')[0]?.startsWith('ferry: '), true);
  }
  const listed = await cli(['pipeline', 'list', '--json', ...flags]);
  assert.deepEqual(JSON.parse(listed.stdout).pipelines, []);

  // A good pipeline: applied, run with --wait, progress shown, exit 0, bytes identical.
  const good = write(
    'good.yaml',
    'name: copy\nactivities:\n  - name: files\n    source: { linkedService: src, filesPerTask: 3 }\n    sink: { linkedService: dst, path: copy }\n',
  );
  const applied = await cli(['pipeline', 'apply', '-f', good, ...flags]);
  assert.equal(applied.code, 0, applied.stderr);
  assert.match(applied.stdout, /pipeline copy applied \(version 1\)/);
  const again = await cli(['pipeline', 'apply', '-f', good, ...flags]);
  assert.match(again.stdout, /unchanged \(version 1\)/);
  const ran = await cli(['pipeline', 'run', 'copy', '--wait', ...flags]);
  assert.equal(ran.code, 0, ran.stderr);
  assert.match(ran.stderr, /\d+\/10 tasks/, 'a progress bar on stderr');
  assert.match(ran.stdout, /status:\s+succeeded/);
  assert.deepEqual(treeDigest(join(g.root, 'out', 'copy')), treeDigest(join(g.root, 'in')));

  // A run that fails: --wait exits non-zero with the reason.
  await g.svc.api.call('POST', '/api/v1/linked-services', {
    name: 'gone',
    type: 'filesystem',
    gateway: g.gateway,
    properties: { root: join(g.root, 'missing') },
  });
  const bad = write(
    'bad.yaml',
    'name: broken\nactivities:\n  - name: files\n    source: { linkedService: gone }\n    sink: { linkedService: dst }\n    retry: { maxAttempts: 2, backoffMs: 50 }\n',
  );
  assert.equal((await cli(['pipeline', 'apply', '-f', bad, ...flags])).code, 0);
  const failed = await cli(['pipeline', 'run', 'broken', '--wait', ...flags]);
  assert.equal(failed.code, 1);
  assert.match(failed.stderr, /ferry: run run_\S+ failed: files: .*missing/);

  const runs = await cli(['run', 'list', '--json', ...flags]);
  assert.deepEqual(
    JSON.parse(runs.stdout)
      .runs.map((r: any) => r.status)
      .sort(),
    ['failed', 'succeeded'],
  );
});

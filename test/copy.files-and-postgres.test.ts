/**
 * First copies end to end on a 3-node gateway: many files split across tasks and nodes (bytes
 * identical), and a PostgreSQL table split by ranges of a numeric column into CSV files (every row
 * exactly once). `ferry run show` names the node that ran each task.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import pg from 'pg';
import { cli } from './helpers/cluster.ts';
import {
  fsLinkedServices,
  gatewayWithNodes,
  makeFiles,
  runPipeline,
  treeDigest,
  waitRun,
  type Gateway,
} from './helpers/scenario.ts';

const PG = { host: '127.0.0.1', port: 5432, user: 'postgres', database: 'test' };

async function withGateway(t: Parameters<typeof gatewayWithNodes>[0]): Promise<Gateway> {
  return gatewayWithNodes(t, 3);
}

test('filesystem to filesystem: many files split across tasks and nodes, bytes identical', async (t) => {
  const g = await withGateway(t);
  await fsLinkedServices(g, { in: 'src', out: 'dst' }, { in: 'in', out: 'out' });
  makeFiles(join(g.root, 'in'), 'data', 120, (i) => (i % 7) * 40_000 + 1);
  makeFiles(join(g.root, 'in'), 'skip', 3, () => 10);
  const runId = await runPipeline(g, {
    name: 'files',
    activities: [
      {
        name: 'bins',
        source: { linkedService: 'src', path: 'data', glob: '**/*.bin', filesPerTask: 10 },
        sink: { linkedService: 'dst', path: 'copy' },
      },
    ],
  });
  const run = await waitRun(g, runId);
  assert.equal(run.status, 'succeeded', JSON.stringify(run.error));
  const copies = run.tasks.filter((tk: any) => tk.kind === 'copy');
  assert.equal(copies.length, 12);
  assert.ok(new Set(copies.map((tk: any) => tk.node)).size >= 2, 'tasks ran on several nodes');
  assert.deepEqual(treeDigest(join(g.root, 'out', 'copy')), treeDigest(join(g.root, 'in', 'data')));
  // The run record adds up every byte read, and carries each output's checksum, matching the source.
  const sizes = [...readdirSync(join(g.root, 'in', 'data'), { recursive: true, withFileTypes: true })]
    .filter((e) => e.isFile())
    .map((e) => statSync(join(e.parentPath, e.name)).size);
  assert.equal(
    run.progress.bytes,
    sizes.reduce((a, b) => a + b, 0),
  );
  const digests = treeDigest(join(g.root, 'in', 'data'));
  const outputs = copies.flatMap((tk: any) => tk.outputs);
  assert.equal(outputs.length, digests.size);
  for (const o of outputs) assert.equal(o.sha256, digests.get(o.name), o.name);

  const shown = await cli(['run', 'show', runId, '--service', g.svc.url, '--token', g.svc.token]);
  assert.equal(shown.code, 0, shown.stderr);
  for (const tk of copies) assert.ok(shown.stdout.includes(tk.node));
  assert.match(shown.stdout, /bins\/11\s+succeeded\s+node-\d/);
});

test('filesystem paths outside --allow-path are refused and the run fails with a clear error', async (t) => {
  const g = await withGateway(t);
  await g.svc.api.call('POST', '/api/v1/linked-services', {
    name: 'etc',
    type: 'filesystem',
    gateway: g.gateway,
    properties: { root: '/etc' },
  });
  await fsLinkedServices(g, { in: 'src', out: 'dst' }, { in: 'in', out: 'out' });
  const runId = await runPipeline(g, {
    name: 'escape',
    activities: [{ name: 'steal', source: { linkedService: 'etc' }, sink: { linkedService: 'dst' } }],
  });
  const run = await waitRun(g, runId);
  assert.equal(run.status, 'failed');
  assert.match(run.error, /outside the allowed roots/);
  const plan = run.tasks.find((tk: any) => tk.kind === 'plan');
  assert.equal(plan.attempts, 1, 'a forbidden path is not retried');
  assert.deepEqual(readdirSync(join(g.root, 'out')), []);
});

test('PostgreSQL table to CSV files: split by ranges of a numeric column, every row exactly once', async (t) => {
  const schema = `copy_${process.pid}_${Date.now()}`;
  const client = new pg.Client(PG);
  await client.connect();
  t.after(async () => {
    await client.query(`DROP SCHEMA IF EXISTS ${schema} CASCADE`);
    await client.end();
  });
  await client.query(`CREATE SCHEMA ${schema}`);
  await client.query(
    `CREATE TABLE ${schema}.orders (id bigint, customer text, amount numeric(12,2), note text)`,
  );
  await client.query(
    `INSERT INTO ${schema}.orders SELECT i, 'customer ' || (i % 97), (i * 1.25)::numeric(12,2), CASE WHEN i % 5 = 0 THEN 'line one' || chr(10) || 'line "two"' END FROM generate_series(1, 20000) i`,
  );
  await client.query(`INSERT INTO ${schema}.orders VALUES (NULL, 'no id', 1.00, 'null key row')`);

  const g = await withGateway(t);
  await fsLinkedServices(g, { in: 'unused', out: 'dst' }, { in: 'unused', out: 'out' });
  await g.svc.api.call('POST', '/api/v1/linked-services', {
    name: 'pg',
    type: 'postgres',
    gateway: g.gateway,
    properties: { ...PG, password: 'not-needed-with-trust' },
  });
  // The secret is kept but never shown.
  const ls = await g.svc.api.call('GET', '/api/v1/linked-services/pg');
  assert.deepEqual(ls.secrets, ['password']);
  assert.equal(JSON.stringify(ls).includes('not-needed-with-trust'), false);

  const runId = await runPipeline(g, {
    name: 'orders',
    activities: [
      {
        name: 'orders',
        source: { linkedService: 'pg', table: `${schema}.orders`, partitionColumn: 'id', partitions: 6 },
        sink: { linkedService: 'dst', path: 'orders' },
      },
    ],
  });
  const run = await waitRun(g, runId);
  assert.equal(run.status, 'succeeded', JSON.stringify(run.error));
  const copies = run.tasks.filter((tk: any) => tk.kind === 'copy');
  assert.equal(copies.length, 6);
  assert.ok(
    new Set(copies.map((tk: any) => tk.node)).size >= 2,
    'partitions ran on several nodes: ' +
      JSON.stringify(copies.map((tk: any) => tk.attemptList.map((a: any) => [a.node, a.status, a.error]))),
  );
  assert.equal(run.progress.rows, 20001);

  const dir = join(g.root, 'out', 'orders');
  const files = readdirSync(dir).sort();
  assert.deepEqual(files, [
    'part-00000.csv',
    'part-00001.csv',
    'part-00002.csv',
    'part-00003.csv',
    'part-00004.csv',
    'part-00005.csv',
  ]);
  assert.equal(existsSync(join(dir, '.ferry-staging')), false);

  // Compare with PostgreSQL's own CSV of the whole table: same multiset of records.
  const { rows } = await client.query(
    `SELECT count(*)::int AS n, count(DISTINCT id)::int AS ids FROM ${schema}.orders`,
  );
  let records = 0;
  const ids = new Set<string>();
  for (const f of files) {
    const text = readFileSync(join(dir, f), 'utf8');
    assert.ok(text.startsWith('id,customer,amount,note\n'), `${f} has a header`);
    // Records start at a line beginning with an id (or an empty id for the NULL row).
    for (const m of text.matchAll(/^(\d*),customer \d+|^(),no id/gm)) {
      records++;
      if (m[1]) ids.add(m[1]);
    }
  }
  assert.equal(records, rows[0].n);
  assert.equal(ids.size, rows[0].ids);
});

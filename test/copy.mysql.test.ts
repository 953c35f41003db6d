/**
 * A MariaDB table copied end to end on a 3-node gateway: split by ranges of its id column into CSV
 * files through the filesystem sink, every row exactly once, partitions run on several nodes.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import mysql from 'mysql2/promise';
import { fsLinkedServices, gatewayWithNodes, runPipeline, waitRun } from './helpers/scenario.ts';

const MY = { host: '127.0.0.1', port: 3306, user: 'root' };
const ROWS = 20_000;

test('MariaDB table to CSV files: split by ranges of id, every row exactly once', async (t) => {
  const db = `ferry_copy_${process.pid}_${Date.now()}`;
  const admin = await mysql.createConnection({ ...MY, database: 'test', multipleStatements: true });
  t.after(async () => {
    await admin.query(`DROP DATABASE IF EXISTS ${db}`);
    await admin.end();
  });
  await admin.query(`CREATE DATABASE ${db}`);
  await admin.query(`USE ${db}`);
  await admin.query(`
    CREATE TABLE digits (d int);
    INSERT INTO digits VALUES (0),(1),(2),(3),(4),(5),(6),(7),(8),(9);
    CREATE TABLE orders (id bigint PRIMARY KEY, customer varchar(40), amount decimal(12,2), note text);
    INSERT INTO orders
    SELECT i, CONCAT('customer ', i % 97), i * 1.25,
           CASE WHEN i % 5 = 0 THEN CONCAT('line one', CHAR(10), 'line "two"') END
      FROM (SELECT 1 + a.d + 10 * b.d + 100 * c.d + 1000 * e.d + 10000 * f.d AS i
              FROM digits a, digits b, digits c, digits e, digits f) s
     WHERE i <= ${ROWS};
  `);

  const g = await gatewayWithNodes(t, 3);
  await fsLinkedServices(g, { in: 'unused', out: 'dst' }, { in: 'unused', out: 'out' });
  await g.svc.api.call('POST', '/api/v1/linked-services', {
    name: 'maria',
    type: 'mysql',
    gateway: g.gateway,
    properties: { ...MY, database: db, password: '' },
  });
  const ls = await g.svc.api.call('GET', '/api/v1/linked-services/maria');
  assert.deepEqual(ls.secrets, ['password']);

  const runId = await runPipeline(g, {
    name: 'maria-orders',
    activities: [
      {
        name: 'orders',
        source: { linkedService: 'maria', table: 'orders', partitionColumn: 'id', partitions: 6 },
        sink: { linkedService: 'dst', path: 'orders' },
      },
    ],
  });
  const run = await waitRun(g, runId);
  assert.equal(run.status, 'succeeded', JSON.stringify(run.error));
  const copies = run.tasks.filter((tk: any) => tk.kind === 'copy');
  assert.equal(copies.length, 6);
  assert.ok(new Set(copies.map((tk: any) => tk.node)).size >= 2, 'partitions ran on several nodes');
  assert.equal(run.progress.rows, ROWS);

  const dir = join(g.root, 'out', 'orders');
  const files = readdirSync(dir).sort();
  assert.deepEqual(
    files,
    copies.map((_: unknown, i: number) => `part-${String(i).padStart(5, '0')}.csv`),
  );
  assert.equal(existsSync(join(dir, '.ferry-staging')), false);

  const ids: number[] = [];
  for (const f of files) {
    const text = readFileSync(join(dir, f), 'utf8');
    assert.ok(text.startsWith('id,customer,amount,note\n'), `${f} has a header`);
    // Records start at a line beginning with an id; quoted notes span two lines.
    for (const m of text.matchAll(/^(\d+),customer (\d+),(\d+\.\d\d),/gm)) {
      const id = Number(m[1]);
      assert.equal(Number(m[2]), id % 97);
      assert.equal(m[3], (id * 1.25).toFixed(2));
      ids.push(id);
    }
    assert.ok(text.includes('"line one\nline ""two"""') || !text.includes('line one'));
  }
  ids.sort((a, b) => a - b);
  assert.deepEqual(
    ids,
    Array.from({ length: ROWS }, (_, i) => i + 1),
  );
});

/**
 * Azure Blob end to end on a 2-node gateway against Azurite: a folder of files goes from the
 * filesystem into a container (parallel block upload, committed per task) and back out of it into
 * another folder, split into tasks that run on both nodes; the bytes come back identical. And a
 * PostgreSQL table goes out as Parquet blobs and back into a table that the plan task creates from
 * the first blob's footer.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import pg from 'pg';
import { DEV_KEY, azuriteLinkedService } from './helpers/azurite.ts';
import {
  fsLinkedServices,
  gatewayWithNodes,
  makeFiles,
  runPipeline,
  reportedDigests,
  treeDigest,
  waitRun,
} from './helpers/scenario.ts';

test('filesystem to Azure Blob and back: tasks on both nodes, bytes identical', async (t) => {
  const g = await gatewayWithNodes(t, 2);
  await fsLinkedServices(g, { in: 'src', out: 'dst' }, { in: 'in', out: 'out' });
  const { container: blobs } = await azuriteLinkedService(t, g, 'lake');
  // The connection string is kept but never shown.
  const ls = await g.svc.api.call('GET', '/api/v1/linked-services/lake');
  assert.deepEqual(ls.secrets, ['connectionString', 'accountKey', 'sasToken']);
  assert.equal(JSON.stringify(ls).includes(DEV_KEY), false);
  assert.equal(ls.properties.connectionString, undefined);

  // Sizes up to 9 MiB, so some files go up as more than one block.
  makeFiles(join(g.root, 'in'), 'data', 40, (i) => (i % 5 === 0 ? 9 * 1024 * 1024 + i : (i % 7) * 30_000));

  const upId = await runPipeline(g, {
    name: 'to-blob',
    activities: [
      {
        name: 'up',
        source: { linkedService: 'src', path: 'data', filesPerTask: 5 },
        sink: { linkedService: 'lake', prefix: 'copy' },
      },
    ],
  });
  const up = await waitRun(g, upId);
  assert.equal(up.status, 'succeeded', JSON.stringify(up.error));
  const listed: string[] = [];
  for await (const b of blobs.listBlobsFlat()) listed.push(b.name);
  assert.equal(listed.length, 40);
  assert.ok(listed.every((name) => name.startsWith('copy/sub')));
  // Files under 512 KiB were put whole at commit (one request, no blocks); the others in blocks.
  // Every blob names the attempt that wrote it.
  const attempts = new Set(up.tasks.flatMap((tk: any) => tk.attemptList.map((a: any) => a.id)));
  for (const name of listed) {
    const i = Number(/file-(\d+)/.exec(name)?.[1]);
    const blob = blobs.getBlockBlobClient(name);
    const blocks = (await blob.getBlockList('committed')).committedBlocks ?? [];
    assert.equal(blocks.length > 0, i % 5 === 0, name);
    const writtenBy = (await blob.getProperties()).metadata?.['ferryattempt'];
    assert.ok(writtenBy !== undefined && attempts.has(writtenBy), `${name}: ${writtenBy}`);
  }

  const downId = await runPipeline(g, {
    name: 'from-blob',
    activities: [
      {
        name: 'down',
        source: { linkedService: 'lake', prefix: 'copy', filesPerTask: 5 },
        sink: { linkedService: 'dst', path: 'back' },
      },
    ],
  });
  const down = await waitRun(g, downId);
  assert.equal(down.status, 'succeeded', JSON.stringify(down.error));

  assert.deepEqual(treeDigest(join(g.root, 'out', 'back')), treeDigest(join(g.root, 'in', 'data')));
  const copies = [...up.tasks, ...down.tasks].filter((tk: any) => tk.kind === 'copy');
  assert.equal(copies.length, 16);
  assert.deepEqual(
    new Set(copies.map((tk: any) => tk.node)),
    new Set(['node-1', 'node-2']),
    'tasks ran on both nodes',
  );
  // Each way, the run records every file's sha256 as the source's (a held file's is taken at commit).
  const source = treeDigest(join(g.root, 'in', 'data'));
  assert.deepEqual(reportedDigests(up), source);
  assert.deepEqual(reportedDigests(down), source);
});

test('PostgreSQL to Parquet blobs and into a new table created from their footers', async (t) => {
  const PG = { host: '127.0.0.1', port: 5432, user: 'postgres', database: 'test' };
  const schema = `ferry_azpq_${process.pid}_${Date.now()}`;
  const db = new pg.Client(PG);
  await db.connect();
  t.after(async () => {
    await db.query(`DROP SCHEMA IF EXISTS "${schema}" CASCADE`);
    await db.end();
  });
  await db.query(`CREATE SCHEMA "${schema}";
    CREATE TABLE "${schema}".src (id bigint NOT NULL, amount numeric(12,2), note text, at timestamptz);
    INSERT INTO "${schema}".src SELECT g, g * 1.25, CASE WHEN g % 7 = 0 THEN NULL ELSE 'row ' || g END,
      timestamptz '2024-02-29 13:45:00+00' + g * interval '1.5 seconds' FROM generate_series(1, 30000) g`);
  const g = await gatewayWithNodes(t, 2);
  await g.svc.api.call('POST', '/api/v1/linked-services', {
    name: 'pg',
    type: 'postgres',
    gateway: g.gateway,
    properties: { ...PG, password: '' },
  });
  await azuriteLinkedService(t, g, 'lake');

  const outId = await runPipeline(g, {
    name: 'to-parquet',
    activities: [
      {
        name: 'out',
        source: { linkedService: 'pg', table: `${schema}.src`, partitionColumn: 'id', partitions: 3 },
        sink: { linkedService: 'lake', prefix: 'pq', format: 'parquet' },
      },
    ],
  });
  const out = await waitRun(g, outId, 120_000);
  assert.equal(out.status, 'succeeded', JSON.stringify(out.error));

  const backId = await runPipeline(g, {
    name: 'from-parquet',
    activities: [
      {
        name: 'back',
        source: { linkedService: 'lake', prefix: 'pq', format: 'parquet' },
        sink: { linkedService: 'pg', table: `${schema}.back`, mode: 'create' },
      },
    ],
  });
  const back = await waitRun(g, backId, 120_000);
  assert.equal(back.status, 'succeeded', JSON.stringify(back.error));
  const { rows: columns } = await db.query(
    `SELECT column_name, data_type, numeric_precision, numeric_scale FROM information_schema.columns
      WHERE table_schema = $1 AND table_name = 'back' ORDER BY ordinal_position`,
    [schema],
  );
  assert.deepEqual(
    columns.map(
      (c) =>
        `${c.column_name}:${c.data_type}${c.numeric_scale === null ? '' : `(${c.numeric_precision},${c.numeric_scale})`}`,
    ),
    ['id:bigint(64,0)', 'amount:numeric(12,2)', 'note:character varying', 'at:timestamp with time zone'],
  );
  const digest = async (table: string): Promise<unknown> =>
    (
      await db.query(
        `SELECT count(*)::int AS n, md5(string_agg(x::text, '|' ORDER BY x.id)) AS md5 FROM "${schema}".${table} x`,
      )
    ).rows[0];
  assert.deepEqual(await digest('back'), await digest('src'));
});

/**
 * Azure Blob end to end on a 2-node gateway against Azurite: a folder of files goes from the
 * filesystem into a container (parallel block upload, committed per task) and back out of it into
 * another folder, split into tasks that run on both nodes; the bytes come back identical.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
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

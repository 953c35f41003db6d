/**
 * kill -9 of a worker in the middle of its commit into Azure Blob: small files are read and put
 * whole at commit, so some blobs of the task are published and others not when the node dies. The
 * task runs again on another node, whose commit replaces every blob (each then names the retry's
 * attempt), and the container ends with exactly one complete copy.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { join } from 'node:path';
import { azuriteLinkedService } from './helpers/azurite.ts';
import { eventually } from './helpers/cluster.ts';
import {
  fsLinkedServices,
  gatewayWithNodes,
  makeFiles,
  runPipeline,
  treeDigest,
  waitRun,
} from './helpers/scenario.ts';

test('kill -9 of a worker mid-commit into Azure Blob: the retry replaces every blob, one complete copy', async (t) => {
  const g = await gatewayWithNodes(t, 3);
  await fsLinkedServices(g, { in: 'src', out: 'dst' }, { in: 'in', out: 'out' });
  const { container: blobs } = await azuriteLinkedService(t, g, 'lake');
  const listed = async (): Promise<string[]> => {
    const names: string[] = [];
    for await (const b of blobs.listBlobsFlat()) names.push(b.name);
    return names;
  };
  // 40 files under 512 KiB, one task: each is held at stage, then read (at the task's rate) and put
  // whole at commit, so the commit takes about 8 s.
  makeFiles(join(g.root, 'in'), 'data', 40, (i) => 200_000 + i);
  const runId = await runPipeline(g, {
    name: 'held',
    activities: [
      {
        name: 'up',
        source: { linkedService: 'src', path: 'data', filesPerTask: 100 },
        sink: { linkedService: 'lake' },
        maxBytesPerSecond: 1024 * 1024,
      },
    ],
  });

  // Some blobs published, others not: the attempt is in the middle of its commit.
  const running = await eventually(
    'some blobs of the task committed',
    async () => {
      const r = await g.svc.api.call('GET', `/api/v1/runs/${runId}`);
      const attempt = r.tasks.find((tk: any) => tk.kind === 'copy')?.attemptList.at(-1);
      if (attempt?.status !== 'running') return undefined;
      const count = (await listed()).length;
      return count >= 3 && count <= 30 ? attempt : undefined;
    },
    30_000,
    50,
  );
  const victim = g.nodes.find((n) => n.name === running.node);
  assert.ok(victim);
  victim.proc.kill('SIGKILL');
  const partial = (await listed()).length;
  assert.ok(partial < 40, `${partial} blobs when the node died`);

  const run = await waitRun(g, runId, 90_000);
  assert.equal(run.status, 'succeeded', JSON.stringify(run.error));
  const copy = run.tasks.find((tk: any) => tk.kind === 'copy');
  assert.equal(copy.attemptList.find((a: any) => a.id === running.id).status, 'lost');
  const retry = copy.attemptList.at(-1);
  assert.equal(retry.status, 'succeeded');
  assert.notEqual(retry.node, victim.name, 'the task finished on another node');

  // Exactly the source files, each whole, each written by the retry.
  const inContainer = new Map<string, string>();
  for (const name of await listed()) {
    const blob = blobs.getBlockBlobClient(name);
    const bytes = await blob.downloadToBuffer();
    inContainer.set(name, createHash('sha256').update(bytes).digest('hex'));
    assert.equal((await blob.getProperties()).metadata?.['ferryattempt'], retry.id, name);
  }
  assert.deepEqual(inContainer, treeDigest(join(g.root, 'in', 'data')));
});

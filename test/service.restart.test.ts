/**
 * Restarting the service mid-run loses nothing: nodes reconnect, running attempts keep their leases
 * and wait for the service before they commit, the run completes.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { eventually, startService } from './helpers/cluster.ts';
import {
  fsLinkedServices,
  gatewayWithNodes,
  makeFiles,
  nodesView,
  runPipeline,
  treeDigest,
  waitRun,
} from './helpers/scenario.ts';

test('kill -9 and restart of the service mid-run: nodes reconnect and the run completes', async (t) => {
  const g = await gatewayWithNodes(t, 3, { nodeArgs: ['--limit', '2'] });
  await fsLinkedServices(g, { in: 'src', out: 'dst' }, { in: 'in', out: 'out' });
  makeFiles(join(g.root, 'in'), '', 18, () => 300 * 1024);
  const runId = await runPipeline(g, {
    name: 'restart',
    activities: [
      {
        name: 'files',
        source: { linkedService: 'src', filesPerTask: 1 },
        sink: { linkedService: 'dst' },
        maxBytesPerSecond: 150 * 1024,
      },
    ],
  });
  await eventually('some tasks running', async () => {
    const r = await g.svc.api.call('GET', `/api/v1/runs/${runId}`);
    return r.tasks.some((tk: any) => tk.kind === 'copy' && tk.status === 'running');
  });

  g.svc.proc.kill('SIGKILL');
  await g.svc.proc.exited;
  // Nodes keep working while the service is away; their reports wait for it.
  const svc2 = await startService(t, { dataDir: g.svc.dataDir, port: g.svc.port });
  g.svc = svc2;

  await eventually(
    'all nodes back Online',
    async () => (await nodesView(g)).nodes.every((n: any) => n.status === 'Online'),
    20_000,
  );
  const run = await waitRun(g, runId, 120_000);
  assert.equal(run.status, 'succeeded', JSON.stringify(run.error));
  const failed = run.tasks.filter((tk: any) => tk.status !== 'succeeded');
  assert.deepEqual(failed, []);
  const lost = run.tasks.flatMap((tk: any) => tk.attemptList).filter((a: any) => a.status === 'lost');
  assert.deepEqual(lost, [], 'attempts running across the restart kept their leases');
  assert.deepEqual(treeDigest(join(g.root, 'out')), treeDigest(join(g.root, 'in')));
});

test('the service killed and started again 4 s later: attempts wait for it, and with one attempt per task the run succeeds', async (t) => {
  const g = await gatewayWithNodes(t, 2, { nodeArgs: ['--limit', '2'] });
  await fsLinkedServices(g, { in: 'src', out: 'dst' }, { in: 'in', out: 'out' });
  // Each task takes about 2 s: the ones running at the kill reach their commit while it is down.
  makeFiles(join(g.root, 'in'), '', 12, () => 300 * 1024);
  const runId = await runPipeline(g, {
    name: 'restart-once',
    activities: [
      {
        name: 'files',
        source: { linkedService: 'src', filesPerTask: 1 },
        sink: { linkedService: 'dst' },
        maxBytesPerSecond: 150 * 1024,
        retry: { maxAttempts: 1 },
      },
    ],
  });
  await eventually('some tasks running', async () => {
    const r = await g.svc.api.call('GET', `/api/v1/runs/${runId}`);
    return r.tasks.some((tk: any) => tk.kind === 'copy' && tk.status === 'running');
  });

  g.svc.proc.kill('SIGKILL');
  await g.svc.proc.exited;
  await sleep(4000);
  g.svc = await startService(t, { dataDir: g.svc.dataDir, port: g.svc.port });

  const run = await waitRun(g, runId, 120_000);
  assert.equal(run.status, 'succeeded', JSON.stringify(run.error));
  const attempts = run.tasks.flatMap((tk: any) => tk.attemptList);
  assert.deepEqual(
    attempts.filter((a: any) => a.status !== 'succeeded'),
    [],
    'no attempt failed or was lost across the outage',
  );
  assert.deepEqual(treeDigest(join(g.root, 'out')), treeDigest(join(g.root, 'in')));
  assert.match(
    g.nodes.map((n) => n.proc.output).join('\n'),
    /cannot confirm the lease before commit; waiting for the service/,
    'some attempt did wait for the service before its commit',
  );
});

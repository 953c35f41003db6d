/**
 * Work lost with its node goes back to the front of the queue, not behind it: a long queue of short
 * tasks on busy workers, one worker killed mid-task, and its task starts again within a second of
 * being declared lost (the service's own timestamps), while dozens of tasks still wait.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { eventually } from './helpers/cluster.ts';
import {
  fsLinkedServices,
  gatewayWithNodes,
  makeFiles,
  nodesView,
  runPipeline,
  treeDigest,
  waitRun,
} from './helpers/scenario.ts';

test('a task lost with its node starts again within 1 s, ahead of a long queue', async (t) => {
  const g = await gatewayWithNodes(t, 3, { nodeArgs: ['--limit', '1'] });
  await fsLinkedServices(g, { in: 'src', out: 'dst' }, { in: 'in', out: 'out' });
  // 90 tasks of about 0.25 s each on three slots: a slot frees every ~0.1 s, and the queue lasts
  // well past the ~5 s it takes to declare the killed node's attempt lost.
  makeFiles(join(g.root, 'in'), '', 90, () => 32 * 1024);
  const runId = await runPipeline(g, {
    name: 'front',
    activities: [
      {
        name: 'files',
        source: { linkedService: 'src', filesPerTask: 1 },
        sink: { linkedService: 'dst' },
        maxBytesPerSecond: 128 * 1024,
      },
    ],
  });

  // Kill a worker that is not the dispatcher (no election in the way), mid-task.
  const { gateway } = await nodesView(g);
  const running = await eventually('a worker running a copy', async () => {
    const r = await g.svc.api.call('GET', `/api/v1/runs/${runId}`);
    for (const tk of r.tasks) {
      const a = tk.attemptList.at(-1);
      if (tk.kind === 'copy' && a?.node !== gateway.dispatcher && a?.status === 'running')
        return { task: tk.id, attempt: a.id, node: a.node };
    }
    return undefined;
  });
  const victim = g.nodes.find((n) => n.name === running.node);
  assert.ok(victim);
  victim.proc.kill('SIGKILL');

  const lostAt = await eventually(
    'the attempt declared lost',
    async () => {
      const r = await g.svc.api.call('GET', `/api/v1/runs/${runId}`);
      const a = r.tasks
        .find((tk: any) => tk.id === running.task)
        .attemptList.find((x: any) => x.id === running.attempt);
      if (a.status !== 'lost') return undefined;
      const queued = r.tasks.filter((tk: any) => tk.status === 'queued').length;
      return { at: Date.parse(a.finishedAt), queued };
    },
    30_000,
  );
  assert.ok(lostAt.queued >= 20, `a long queue was waiting when the attempt was lost (${lostAt.queued})`);

  const run = await waitRun(g, runId, 120_000);
  assert.equal(run.status, 'succeeded', JSON.stringify(run.error));
  const task = run.tasks.find((tk: any) => tk.id === running.task);
  const lostIdx = task.attemptList.findIndex((a: any) => a.id === running.attempt);
  const next = task.attemptList[lostIdx + 1];
  assert.ok(next, 'the task ran again');
  const wait = Date.parse(next.startedAt) - lostAt.at;
  t.diagnostic(`lost with ${lostAt.queued} tasks queued; started again after ${wait} ms`);
  assert.ok(wait < 1000, `the task started again ${wait} ms after it was declared lost`);
  assert.deepEqual(treeDigest(join(g.root, 'out')), treeDigest(join(g.root, 'in')));
});

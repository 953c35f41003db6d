/**
 * The concurrent jobs limit end to end: two nodes at --limit 2 never run more than two tasks each,
 * a throttled run saturates them, and `ferry node set-limit` raises one node's limit live, mid-run.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { ADMIN_TOKEN, cli, eventually } from './helpers/cluster.ts';
import {
  fsLinkedServices,
  gatewayWithNodes,
  makeFiles,
  nodesView,
  runPipeline,
  treeDigest,
  waitRun,
} from './helpers/scenario.ts';

interface Sample {
  /** Attempts dispatched or running per node, from the run detail. */
  attempts: Map<string, number>;
  /** jobsRunning per node, from the gateway's nodes view (the nodes' own heartbeats). */
  jobs: Map<string, number>;
  /** Whether the limit change had been issued before this sample was taken. */
  raised: boolean;
}

test('concurrent jobs limit: never exceeded, saturated, and raised live with set-limit', async (t) => {
  const g = await gatewayWithNodes(t, 2, { nodeArgs: ['--limit', '2'] });
  await fsLinkedServices(g, { in: 'src', out: 'dst' }, { in: 'in', out: 'out' });
  makeFiles(join(g.root, 'in'), '', 24, (i) => 320 * 1024 + i * 512);
  const runId = await runPipeline(g, {
    name: 'throttled',
    activities: [
      {
        name: 'files',
        source: { linkedService: 'src', filesPerTask: 1 },
        sink: { linkedService: 'dst' },
        maxBytesPerSecond: 128 * 1024, // ~2.5 s per file
      },
    ],
  });

  const samples: Sample[] = [];
  const violations: string[] = [];
  let raised = false;
  let stop = false;
  let lastRun: any;
  const limitOf = (node: string, s: Sample): number => (node === 'node-1' && s.raised ? 4 : 2);

  const takeSample = async (): Promise<void> => {
    const s: Sample = { attempts: new Map(), jobs: new Map(), raised };
    const [run, view] = await Promise.all([g.svc.api.call('GET', `/api/v1/runs/${runId}`), nodesView(g)]);
    lastRun = run;
    for (const tk of run.tasks)
      for (const a of tk.attemptList)
        if (a.status === 'running' || a.status === 'dispatched')
          s.attempts.set(a.node, (s.attempts.get(a.node) ?? 0) + 1);
    for (const n of view.nodes) s.jobs.set(n.name, n.jobsRunning);
    for (const [node, count] of [...s.attempts, ...s.jobs]) {
      if (count > limitOf(node, s))
        violations.push(`sample ${samples.length}: ${node} runs ${count} (limit ${limitOf(node, s)})`);
    }
    samples.push(s);
  };
  // Polls while the run goes on; each sample is checked against the limits in force when it was taken.
  const sampler = (async () => {
    while (!stop) {
      await takeSample();
      await sleep(100); // polling interval, not synchronization
    }
  })();
  t.after(async () => {
    stop = true;
    await sampler.catch(() => undefined);
  });

  const max = (node: string, pick: (s: Sample) => Map<string, number>, phase: (s: Sample) => boolean) =>
    Math.max(0, ...samples.filter(phase).map((s) => pick(s).get(node) ?? 0));

  // Saturation: both nodes at their limit of 2, by the service's count and by the nodes' own.
  await eventually(
    'both nodes saturated at 2',
    () =>
      ['node-1', 'node-2'].every(
        (n) =>
          max(
            n,
            (s) => s.attempts,
            () => true,
          ) === 2,
      ) &&
      ['node-1', 'node-2'].some(
        (n) =>
          max(
            n,
            (s) => s.jobs,
            () => true,
          ) === 2,
      ),
    30_000,
  );
  assert.deepEqual(violations, []);
  const queuedLeft = lastRun.tasks.filter((tk: any) => tk.status === 'queued').length;
  assert.ok(queuedLeft >= 6, `enough work left to see the new limit used (${queuedLeft} queued)`);
  // The gateway's own page shows its queue, and each node the attempts handed to it not started yet.
  const detail = await g.svc.api.call('GET', `/api/v1/gateways/${g.gateway}`);
  assert.ok(detail.queue.tasks >= 1 && detail.queue.oldestWaitSeconds >= 0, JSON.stringify(detail.queue));
  for (const n of detail.nodeList) assert.ok(Number.isInteger(n.queue) && n.queue >= 0, JSON.stringify(n));

  // Raise node-1's limit live, through the CLI.
  raised = true;
  const res = await cli([
    '--service',
    g.svc.url,
    '--token',
    ADMIN_TOKEN,
    'node',
    'set-limit',
    g.gateway,
    'node-1',
    '4',
  ]);
  assert.equal(res.code, 0, res.stderr);
  assert.equal(res.stdout.trim(), 'node-1: concurrent jobs limit 4');

  const after = (s: Sample): boolean => s.raised;
  await eventually(
    'node-1 running 3 or more at once',
    () => max('node-1', (s) => s.attempts, after) >= 3 && max('node-1', (s) => s.jobs, after) >= 3,
    30_000,
  );
  const view = await nodesView(g);
  const n1 = view.nodes.find((n: any) => n.name === 'node-1');
  const n2 = view.nodes.find((n: any) => n.name === 'node-2');
  assert.equal(n1.jobsLimit, 4);
  assert.equal(n1.limitIsDefault, false);
  assert.equal(n2.jobsLimit, 2);
  assert.equal(n2.limitIsDefault, true);

  const run = await waitRun(g, runId, 60_000);
  stop = true;
  await sampler;
  assert.equal(run.status, 'succeeded', JSON.stringify(run.error));
  assert.deepEqual(violations, []);
  assert.ok(max('node-2', (s) => s.attempts, after) <= 2);
  assert.ok(max('node-2', (s) => s.jobs, after) <= 2);
  t.diagnostic(
    `${samples.length} samples; node-1 max ${max(
      'node-1',
      (s) => s.attempts,
      () => true,
    )}, node-2 max ${max(
      'node-2',
      (s) => s.attempts,
      () => true,
    )}`,
  );
  assert.equal(run.progress.tasksTotal, 24);
  assert.equal(run.progress.tasksDone, 24);
  assert.deepEqual(treeDigest(join(g.root, 'out')), treeDigest(join(g.root, 'in')));
});

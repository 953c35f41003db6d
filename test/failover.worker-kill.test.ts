/**
 * kill -9 of a worker mid-task: its attempt is marked lost, the task runs again on another node, and
 * the sink ends with exactly one complete copy: no partial file, no duplicate, no staging left.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { eventually } from './helpers/cluster.ts';
import {
  fsLinkedServices,
  gatewayWithNodes,
  makeFiles,
  runPipeline,
  treeDigest,
  waitRun,
} from './helpers/scenario.ts';

test('kill -9 of a worker mid-task: the task is lost, re-run elsewhere, and the sink holds one complete copy', async (t) => {
  const g = await gatewayWithNodes(t, 3);
  await fsLinkedServices(g, { in: 'src', out: 'dst' }, { in: 'in', out: 'out' });
  makeFiles(join(g.root, 'in'), '', 1, () => 48 * 1024 * 1024);
  const runId = await runPipeline(g, {
    name: 'bigfile',
    activities: [
      {
        name: 'copy',
        source: { linkedService: 'src' },
        sink: { linkedService: 'dst' },
        maxBytesPerSecond: 8 * 1024 * 1024,
      },
    ],
  });

  // Wait until the copy is well under way, then kill the node running it.
  const running = await eventually(
    'the copy to be 25% done',
    async () => {
      const r = await g.svc.api.call('GET', `/api/v1/runs/${runId}`);
      const copy = r.tasks.find((tk: any) => tk.kind === 'copy');
      const attempt = copy?.attemptList.at(-1);
      return attempt?.status === 'running' && attempt.bytes >= 12 * 1024 * 1024 ? attempt : undefined;
    },
    30_000,
  );
  const victim = g.nodes.find((n) => n.name === running.node);
  assert.ok(victim);
  const staging = join(g.root, 'out', '.ferry-staging');
  assert.ok(
    existsSync(staging) && readdirSync(staging).length > 0,
    'the attempt was writing to the staging place',
  );
  assert.equal(
    readdirSync(join(g.root, 'out')).filter((n) => n !== '.ferry-staging').length,
    0,
    'nothing is visible before commit',
  );
  victim.proc.kill('SIGKILL');

  const run = await waitRun(g, runId, 90_000);
  assert.equal(run.status, 'succeeded', JSON.stringify(run.error));
  const copy = run.tasks.find((tk: any) => tk.kind === 'copy');
  const first = copy.attemptList.find((a: any) => a.id === running.id);
  assert.equal(first.status, 'lost');
  assert.match(first.error, new RegExp(`node ${victim.name}`));
  assert.notEqual(copy.node, victim.name, 'the task finished on another node');
  assert.equal(copy.attemptList.at(-1).status, 'succeeded');
  assert.equal(copy.attempts, 2);

  assert.deepEqual(treeDigest(join(g.root, 'out')), treeDigest(join(g.root, 'in')));
  assert.equal(existsSync(staging), false, "the lost attempt's staging was cleaned up");
});

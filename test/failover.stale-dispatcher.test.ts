/**
 * A stale dispatcher (frozen with SIGSTOP past its lease, then resumed) can neither claim nor
 * dispatch: the service refuses its epoch, workers refuse its dispatches, and the run it was
 * dispatching completes exactly once under the new dispatcher.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
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
import { keyOf, mintLease, peerCall, registrationOf } from './helpers/peer.ts';

test('a dispatcher frozen past its lease and resumed can neither claim nor dispatch', async (t) => {
  const g = await gatewayWithNodes(t, 3, { nodeArgs: ['--limit', '2'] });
  await fsLinkedServices(g, { in: 'src', out: 'dst' }, { in: 'in', out: 'out' });
  makeFiles(join(g.root, 'in'), '', 24, () => 200 * 1024);
  const runId = await runPipeline(g, {
    name: 'stale',
    activities: [
      {
        name: 'files',
        source: { linkedService: 'src', filesPerTask: 1 },
        sink: { linkedService: 'dst' },
        maxBytesPerSecond: 100 * 1024,
      },
    ],
  });
  await eventually(
    'copy tasks running',
    async () => (await g.svc.api.call('GET', `/api/v1/runs/${runId}`)).progress.tasksTotal > 0,
  );

  const before = await g.svc.api.call('GET', `/api/v1/gateways/${g.gateway}`);
  const stale = g.nodes.find((n) => n.name === before.dispatcher);
  assert.ok(stale);
  const reg = registrationOf(stale.dataDir);
  stale.proc.kill('SIGSTOP');
  t.after(() => stale.proc.kill('SIGCONT'));

  const after = await eventually(
    'another dispatcher',
    async () => {
      const gw = await g.svc.api.call('GET', `/api/v1/gateways/${g.gateway}`);
      return gw.dispatcher !== stale.name && gw.dispatcher !== null && gw.epoch > before.epoch
        ? gw
        : undefined;
    },
    30_000,
  );

  // The service refuses a claim under the old epoch, with the stale node's own token.
  const claim = await fetch(`${g.svc.url}/api/v1/agent/claim`, {
    method: 'POST',
    headers: { authorization: `Bearer ${reg.nodeToken}`, 'content-type': 'application/json' },
    body: JSON.stringify({ epoch: before.epoch, slots: [{ nodeId: reg.nodeId, free: 2 }], waitMs: 0 }),
  });
  assert.equal(claim.status, 409);
  assert.equal(((await claim.json()) as any).code, 'stale_epoch');

  // A worker that has heard of the new epoch (from its heartbeat, or a dispatch under it) refuses a
  // dispatch signed by the stale dispatcher, with the lease the service gave it, under the old epoch.
  const view = await nodesView(g);
  const worker = view.nodes.find((n: any) => n.name !== stale.name && n.status === 'Online');
  const workerDir = g.nodes.find((n) => n.name === worker.name)?.dataDir ?? '';
  await eventually(
    'the worker to know the new epoch',
    () => JSON.parse(readFileSync(join(workerDir, 'status.json'), 'utf8')).epoch >= after.epoch,
  );
  const body = {
    epoch: before.epoch,
    attempt: {
      attemptId: 'att_forged',
      taskId: 'task_forged',
      nodeId: 'whatever',
      epoch: before.epoch,
      queuedAt: Date.now(),
      spec: {
        runId,
        activity: 'files',
        source: {
          type: 'filesystem',
          linkedService: 'src',
          properties: { root: join(g.root, 'in') },
          options: {},
        },
        sink: {
          type: 'filesystem',
          linkedService: 'dst',
          properties: { root: join(g.root, 'out') },
          options: {},
        },
        work: { kind: 'plan' },
      },
    },
    lease: mintLease(g.svc.dataDir, {
      gatewayId: reg.gatewayId,
      dispatcherNodeId: reg.nodeId,
      epoch: before.epoch,
    }),
  };
  const dispatch = await peerCall(`http://${worker.peerAddress}`, 'POST', '/v1/dispatch', body, {
    key: keyOf(reg),
    gatewayId: reg.gatewayId,
    nodeId: reg.nodeId,
    toNodeId: registrationOf(workerDir).nodeId,
  });
  assert.equal(dispatch.status, 409, JSON.stringify(dispatch.body));
  assert.equal(dispatch.body.code, 'stale_epoch');

  // Frozen past the offline timeout: its attempts are lost. Then it wakes up.
  await eventually(
    'the frozen node Offline',
    async () => (await nodesView(g)).nodes.find((n: any) => n.name === stale.name).status === 'Offline',
    20_000,
  );
  stale.proc.kill('SIGCONT');
  await eventually(
    'the resumed node back as a worker',
    async () => {
      const n = (await nodesView(g)).nodes.find((x: any) => x.name === stale.name);
      return n.status === 'Online' && n.role === 'worker';
    },
    20_000,
  );

  const run = await waitRun(g, runId, 120_000);
  assert.equal(run.status, 'succeeded', JSON.stringify(run.error));
  const switchedAt = Date.parse(after.dispatcherSince);
  const staleClaims = run.tasks
    .flatMap((tk: any) => tk.attemptList)
    .filter((a: any) => a.epoch <= before.epoch && Date.parse(a.claimedAt) > switchedAt);
  assert.deepEqual(staleClaims, [], 'no attempt was claimed under the old epoch after the switch');
  assert.deepEqual(treeDigest(join(g.root, 'out')), treeDigest(join(g.root, 'in')));
});

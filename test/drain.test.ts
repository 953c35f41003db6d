/**
 * Drain and shutdown: `ferry node drain` stops new work for a node while its running tasks finish and
 * `resume` gives it work again; SIGTERM drains (default grace: running tasks finish there, exit 0),
 * hands tasks back when the grace runs out, and moves the dispatcher role at once.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { ADMIN_TOKEN, cli, eventually } from './helpers/cluster.ts';
import {
  fsLinkedServices,
  gatewayWithNodes,
  nodesView,
  runPipeline,
  treeDigest,
  waitRun,
  type Gateway,
} from './helpers/scenario.ts';

/** Sets up linked services `<name>-in` / `<name>-out`, writes the files, starts a one-file-per-task run. */
async function startCopy(
  g: Gateway,
  name: string,
  files: number,
  size: number | ((i: number) => number),
  maxBytesPerSecond: number,
): Promise<string> {
  await fsLinkedServices(
    g,
    { in: `${name}-in`, out: `${name}-out` },
    { in: `${name}-in`, out: `${name}-out` },
  );
  // Task i copies f-<i>.bin: the plan lists files in path order, one per task.
  for (let i = 0; i < files; i++) {
    const bytes = typeof size === 'number' ? size + i * 512 : size(i);
    writeFileSync(join(g.root, `${name}-in`, `f-${String(i).padStart(3, '0')}.bin`), randomBytes(bytes));
  }
  return runPipeline(g, {
    name,
    activities: [
      {
        name: 'files',
        source: { linkedService: `${name}-in`, filesPerTask: 1 },
        sink: { linkedService: `${name}-out` },
        maxBytesPerSecond,
      },
    ],
  });
}

function assertCopied(g: Gateway, name: string): void {
  assert.deepEqual(treeDigest(join(g.root, `${name}-out`)), treeDigest(join(g.root, `${name}-in`)));
}

const run = (g: Gateway, id: string) => g.svc.api.call('GET', `/api/v1/runs/${id}`);
const attemptsOf = (r: any): any[] => r.tasks.flatMap((tk: any) => tk.attemptList);
const active = (a: any): boolean => a.status === 'running' || a.status === 'dispatched';
const ferry = (g: Gateway, ...args: string[]) =>
  cli(['--service', g.svc.url, '--token', ADMIN_TOKEN, ...args]);

test('ferry node drain mid-run: no new tasks for the node, its running ones finish; resume gives it tasks again', async (t) => {
  const g = await gatewayWithNodes(t, 2, { nodeArgs: ['--limit', '2'] });
  // The first four tasks take ~10 s and fill all four slots; four short ones wait behind them, so
  // work is still queued when node-2 is drained (however slow the CLI is to start).
  const runId = await startCopy(g, 'first', 8, (i) => (i < 4 ? 640 * 1024 : 48 * 1024), 64 * 1024);
  const busy = await eventually(
    'node-2 running 2 tasks',
    async () => {
      const r = await run(g, runId);
      const mine = attemptsOf(r).filter((a) => a.node === 'node-2' && a.status === 'running');
      return mine.length === 2 ? mine : undefined;
    },
    30_000,
  );

  const res = await ferry(g, '--json', 'node', 'drain', g.gateway, 'node-2');
  const drainedAt = Date.now();
  assert.equal(res.code, 0, res.stderr);
  assert.equal(JSON.parse(res.stdout).drain, 'draining');

  const seen = await eventually('node-2 shown draining with tasks still running', async () => {
    const v = await nodesView(g);
    const n = v.nodes.find((x: any) => x.name === 'node-2');
    return n.drain === 'draining' && n.jobsRunning > 0 ? n : undefined;
  });
  assert.equal(seen.status, 'Online', 'draining is not a status problem');
  await eventually(
    'node-2 drained',
    async () => (await nodesView(g)).nodes.find((x: any) => x.name === 'node-2').drain === 'drained',
    30_000,
  );

  const done = await waitRun(g, runId, 60_000);
  assert.equal(done.status, 'succeeded', JSON.stringify(done.error));
  assertCopied(g, 'first');
  const all = attemptsOf(done);
  const lateOnNode2 = all.filter((a) => a.node === 'node-2' && Date.parse(a.claimedAt) > drainedAt);
  assert.deepEqual(lateOnNode2, [], 'nothing was claimed for node-2 after the drain');
  assert.ok(
    all.some((a) => a.node === 'node-1' && Date.parse(a.claimedAt) > drainedAt),
    `the queued tasks went to node-1 instead (drained at ${new Date(drainedAt).toISOString()}): ${JSON.stringify(all.map((a) => [a.node, a.status, a.claimedAt, a.startedAt, a.finishedAt]))}`,
  );
  for (const b of busy) {
    const final = all.find((a) => a.id === b.id);
    assert.equal(final.status, 'succeeded', `node-2's running attempt ${b.id} finished there`);
  }
  assert.ok(!all.some((a) => a.status === 'released' || a.status === 'lost'));

  // Resume: node-2 takes tasks again.
  const resumed = await ferry(g, 'node', 'resume', g.gateway, 'node-2');
  assert.equal(resumed.code, 0, resumed.stderr);
  assert.equal(resumed.stdout.trim(), 'node-2: resumed');
  await eventually('node-2 no longer draining', async () => {
    const n = (await nodesView(g)).nodes.find((x: any) => x.name === 'node-2');
    return n.drain === null && n.status === 'Online';
  });
  const second = await startCopy(g, 'second', 6, 64 * 1024, 64 * 1024);
  const after = await waitRun(g, second, 60_000);
  assert.equal(after.status, 'succeeded', JSON.stringify(after.error));
  assertCopied(g, 'second');
  assert.ok(
    attemptsOf(after).some((a) => a.node === 'node-2' && a.status === 'succeeded'),
    'node-2 ran tasks of the second run',
  );
});

test('SIGTERM of a worker with the default grace: its task finishes there, exit code 0, Offline "shut down"', async (t) => {
  const g = await gatewayWithNodes(t, 2, { nodeArgs: ['--limit', '1'] });
  const runId = await startCopy(g, 'term', 2, 256 * 1024, 64 * 1024); // ~4 s per task, one per node
  const gw = await g.svc.api.call('GET', `/api/v1/gateways/${g.gateway}`);
  const worker = g.nodes.find((n) => n.name !== gw.dispatcher);
  assert.ok(worker);
  const attempt = await eventually(
    `${worker.name} running a task`,
    async () =>
      attemptsOf(await run(g, runId)).find(
        (a) => a.node === worker.name && a.status === 'running' && a.bytes > 0,
      ),
    30_000,
  );

  worker.proc.kill('SIGTERM');
  const exit = await worker.proc.exited;
  assert.deepEqual(exit, { code: 0, signal: null }, worker.proc.output.slice(-2000));

  // By the time it exited, its task had finished, on it, in its one attempt.
  const r = await run(g, runId);
  const task = r.tasks.find((tk: any) => tk.attemptList.some((a: any) => a.id === attempt.id));
  assert.equal(task.status, 'succeeded');
  assert.equal(task.node, worker.name);
  assert.equal(task.attemptList.length, 1);
  assert.equal(task.attemptList[0].status, 'succeeded');

  const v = await nodesView(g);
  const n = v.nodes.find((x: any) => x.name === worker.name);
  assert.equal(n.status, 'Offline');
  assert.equal(n.statusReason, 'no_heartbeat');
  assert.match(n.statusHint, new RegExp(`^${worker.name} shut down at \\d{4}-`));
  assert.equal(v.gateway.status, 'Limited');

  const done = await waitRun(g, runId);
  assert.equal(done.status, 'succeeded', JSON.stringify(done.error));
  assertCopied(g, 'term');
});

test('SIGTERM with a short grace: the running attempt is released and the task completes on another node', async (t) => {
  const g = await gatewayWithNodes(t, 2, { nodeArgs: ['--drain-grace-ms', '500'] });
  const runId = await startCopy(g, 'grace', 1, 640 * 1024, 128 * 1024); // one task of ~5 s
  const attempt = await eventually(
    'the copy running',
    async () => attemptsOf(await run(g, runId)).find((a) => a.status === 'running' && a.bytes >= 128 * 1024),
    30_000,
  );
  const r0 = await run(g, runId);
  const copyTask = r0.tasks.find((tk: any) => tk.kind === 'copy');
  assert.ok(
    copyTask.attemptList.some((a: any) => a.id === attempt.id),
    'the running attempt is the copy',
  );
  const victim = g.nodes.find((n) => n.name === attempt.node);
  assert.ok(victim);

  const sentAt = Date.now();
  victim.proc.kill('SIGTERM');
  const exit = await victim.proc.exited;
  assert.deepEqual(exit, { code: 0, signal: null }, victim.proc.output.slice(-2000));
  assert.ok(Date.now() - sentAt < 10_000, 'it stopped soon after the grace, without finishing the copy');
  assert.match(
    victim.proc.output,
    /"graceMs":500,"msg":"draining before shutdown"/,
    '--drain-grace-ms applied',
  );

  const done = await waitRun(g, runId, 60_000);
  assert.equal(done.status, 'succeeded', JSON.stringify(done.error));
  const task = done.tasks.find((tk: any) => tk.kind === 'copy');
  const first = task.attemptList.find((a: any) => a.id === attempt.id);
  assert.equal(first.status, 'released');
  assert.match(first.error, /shut down/);
  assert.equal(task.status, 'succeeded');
  assert.notEqual(task.node, victim.name, 'it completed on another node');
  assert.equal(task.attemptList.at(-1).status, 'succeeded');
  assertCopied(g, 'grace');
});

test('SIGTERM of the dispatcher: the role moves to another node at once and the run completes', async (t) => {
  const g = await gatewayWithNodes(t, 3, { nodeArgs: ['--limit', '2'] });
  const runId = await startCopy(g, 'disp', 10, 128 * 1024, 64 * 1024); // ~2 s per task
  const before = await g.svc.api.call('GET', `/api/v1/gateways/${g.gateway}`);
  const victim = g.nodes.find((n) => n.name === before.dispatcher);
  assert.ok(victim);
  await eventually(
    'tasks running on several nodes',
    async () =>
      new Set(
        attemptsOf(await run(g, runId))
          .filter(active)
          .map((a) => a.node),
      ).size >= 2,
    30_000,
  );

  const sentAt = Date.now();
  victim.proc.kill('SIGTERM');
  const after = await eventually(
    'a new dispatcher',
    async () => {
      const gw = await g.svc.api.call('GET', `/api/v1/gateways/${g.gateway}`);
      return gw.dispatcher !== null && gw.dispatcher !== victim.name ? gw : undefined;
    },
    10_000,
    50,
  );
  const handoverMs = Date.now() - sentAt;
  t.diagnostic(
    `dispatcher ${victim.name} -> ${after.dispatcher} in ${handoverMs} ms: ${after.dispatcherReason}`,
  );
  assert.ok(after.epoch > before.epoch);
  // Handed over because it said it is going (not because its lease lapsed), inside the 5 s lease.
  assert.match(after.dispatcherReason, new RegExp(`^${victim.name} (is draining|shut down)$`));
  assert.ok(handoverMs < 5000, `handover took ${handoverMs} ms`);
  const events = await g.svc.api.call('GET', `/api/v1/gateways/${g.gateway}/events`);
  assert.ok(
    events.events.some(
      (e: any) =>
        e.kind === 'dispatcher_changed' &&
        e.message.startsWith(`dispatcher ${victim.name} -> ${after.dispatcher} (epoch ${after.epoch})`),
    ),
    JSON.stringify(events.events.slice(0, 5)),
  );

  const exit = await victim.proc.exited;
  assert.deepEqual(exit, { code: 0, signal: null }, victim.proc.output.slice(-2000));
  const done = await waitRun(g, runId, 60_000);
  assert.equal(done.status, 'succeeded', JSON.stringify(done.error));
  assertCopied(g, 'disp');
  assert.ok(
    attemptsOf(done).some((a) => a.epoch >= after.epoch && a.status === 'succeeded'),
    'the new dispatcher handed out tasks',
  );
  const v = await nodesView(g);
  assert.equal(v.nodes.filter((n: any) => n.role === 'dispatcher').length, 1);
  assert.match(v.nodes.find((n: any) => n.name === victim.name).statusHint, /shut down/);
});

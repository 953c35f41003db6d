/**
 * dispatch: 20,000 tiny tasks across 4 nodes (BENCHMARKS.md). No peer: absolute figures.
 *  - throughput: copy tasks finished per second (a tiny file each), from the end of planning to the end;
 *  - queue-to-start: single-task runs one after another, from the task being queued at the service to
 *    its worker reporting it started (both on the service's clock), p50/p99;
 *  - claim-to-start in the big run (dispatch overhead under load), p50/p99.
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { BenchContext, median, percentile, writeResult } from './lib.ts';
import { startNode, startService, tempDir } from '../test/helpers/cluster.ts';

const TASKS = Number(process.env['BENCH_TASKS'] ?? 20_000);
const NODES = 4;
const SINGLE_RUNS = Number(process.env['BENCH_SINGLE_RUNS'] ?? 200);

export async function run(): Promise<void> {
  const ctx = new BenchContext();
  try {
    const svc = await startService(ctx, { env: { FERRY_LOG_LEVEL: 'warn' } });
    const gw = await svc.api.call('POST', '/api/v1/gateways', { name: 'bench' });
    const root = tempDir(ctx, 'ferry-bench-');
    const procs = [svc.proc];
    for (let i = 0; i < NODES; i++) {
      const node = await startNode(ctx, svc, {
        name: `n${i + 1}`,
        key: gw.key1,
        allowPaths: [root],
        env: { FERRY_LOG_LEVEL: 'warn' },
      });
      procs.push(node.proc);
    }
    mkdirSync(join(root, 'in'), { recursive: true });
    mkdirSync(join(root, 'out'), { recursive: true });
    mkdirSync(join(root, 'one'), { recursive: true });
    for (let i = 0; i < TASKS; i++)
      writeFileSync(join(root, 'in', `t${String(i).padStart(6, '0')}.txt`), `tiny task ${i}\n`);
    writeFileSync(join(root, 'one', 'single.txt'), 'one\n');
    for (const [name, dir] of [
      ['in', 'in'],
      ['out', 'out'],
      ['one', 'one'],
    ]) {
      await svc.api.call('POST', '/api/v1/linked-services', {
        name,
        type: 'filesystem',
        gateway: 'bench',
        properties: { root: join(root, dir ?? '') },
      });
    }
    const waitRun = async (id: string): Promise<any> => {
      for (;;) {
        const r = await svc.api.call('GET', `/api/v1/runs/${id}?tasks=false`);
        if (r.status === 'succeeded' || r.status === 'failed')
          return svc.api.call('GET', `/api/v1/runs/${id}`);
        await new Promise((res) => setTimeout(res, 200));
      }
    };
    await svc.api.call('PUT', '/api/v1/pipelines', {
      name: 'many',
      activities: [
        { name: 'tiny', source: { linkedService: 'in', filesPerTask: 1 }, sink: { linkedService: 'out' } },
      ],
    });
    await svc.api.call('PUT', '/api/v1/pipelines', {
      name: 'single',
      activities: [
        { name: 'one', source: { linkedService: 'one' }, sink: { linkedService: 'out', path: 'single' } },
      ],
    });

    // Warm-up: a few single runs.
    for (let i = 0; i < 10; i++)
      await waitRun((await svc.api.call('POST', '/api/v1/pipelines/single/runs')).id);

    process.stderr.write(`dispatch: ${TASKS} tasks on ${NODES} nodes...\n`);
    const big = await waitRun((await svc.api.call('POST', '/api/v1/pipelines/many/runs')).id);
    if (big.status !== 'succeeded') throw new Error(`run failed: ${big.error}`);
    const copies = big.tasks.filter((t: any) => t.kind === 'copy');
    if (copies.length !== TASKS) throw new Error(`expected ${TASKS} copy tasks, got ${copies.length}`);
    const plan = big.tasks.find((t: any) => t.kind === 'plan');
    const planDone = Date.parse(plan.attemptList.at(-1).finishedAt);
    const lastDone = Math.max(...copies.map((t: any) => Date.parse(t.attemptList.at(-1).finishedAt)));
    const seconds = (lastDone - planDone) / 1000;
    if (process.env['BENCH_DUMP']) writeFileSync(process.env['BENCH_DUMP'], JSON.stringify(big));
    const claimToStart = copies.map(
      (t: any) => Date.parse(t.attemptList.at(-1).startedAt) - Date.parse(t.attemptList.at(-1).claimedAt),
    );
    const perNode: Record<string, number> = {};
    for (const t of copies) perNode[t.node] = (perNode[t.node] ?? 0) + 1;

    process.stderr.write(`dispatch: ${SINGLE_RUNS} single-task runs...\n`);
    const queueToStart: number[] = [];
    for (let i = 0; i < SINGLE_RUNS; i++) {
      const r = await waitRun((await svc.api.call('POST', '/api/v1/pipelines/single/runs')).id);
      const copy = r.tasks.find((t: any) => t.kind === 'copy');
      const planTask = r.tasks.find((t: any) => t.kind === 'plan');
      // The copy task is queued when the plan's result arrives.
      queueToStart.push(
        Date.parse(copy.attemptList[0].startedAt) - Date.parse(planTask.attemptList.at(-1).finishedAt),
      );
      queueToStart.push(Date.parse(planTask.attemptList[0].startedAt) - Date.parse(r.createdAt));
    }

    const result = {
      tasks: TASKS,
      nodes: NODES,
      seconds,
      tasksPerSecond: Math.round(TASKS / seconds),
      perNode,
      claimToStartMs: { p50: median(claimToStart), p99: percentile(claimToStart, 99) },
      queueToStartMs: {
        samples: queueToStart.length,
        p50: median(queueToStart),
        p99: percentile(queueToStart, 99),
      },
      target: { tasksPerSecond: 1000, p99QueueToStartMs: 50 },
    };
    if (process.env['BENCH_PROFILE']) {
      // Graceful stop, so processes started with --cpu-prof write their profiles.
      for (const p of procs) p.kill('SIGTERM');
      await Promise.all(procs.map((p) => p.exited));
    }
    const file = writeResult('dispatch', result);
    process.stdout.write(`${JSON.stringify(result, null, 2)}\nwritten to ${file}\n`);
  } finally {
    await ctx.close();
  }
}

/**
 * failover: kill -9 the dispatcher during a 500-task run (BENCHMARKS.md). Measured: the time from the
 * kill to the new dispatcher's first dispatch (its first claimed attempt, on the service's clock), and
 * the output: every file present once, byte for byte. Repeated on fresh clusters; median and spread.
 * Peers are not run (their figures are their documented defaults: Kafka Connect reassigns a dead
 * worker's tasks after 5 min, NiFi drops a node after about 40 s).
 */
import { mkdirSync, readdirSync, writeFileSync } from 'node:fs';
import { randomBytes } from 'node:crypto';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { BenchContext, median, writeResult } from './lib.ts';
import { startNode, startService, tempDir } from '../test/helpers/cluster.ts';
import { treeDigest } from '../test/helpers/scenario.ts';

const TASKS = 500;
const NODES = 4;
const ROUNDS = Number(process.env['BENCH_ROUNDS'] ?? 5);

async function round(
  i: number,
): Promise<{ failoverMs: number; lostAttempts: number; files: number; identical: boolean; reason: string }> {
  const ctx = new BenchContext();
  try {
    const svc = await startService(ctx, { env: { FERRY_LOG_LEVEL: 'warn' } });
    const gw = await svc.api.call('POST', '/api/v1/gateways', { name: 'bench' });
    const root = tempDir(ctx, 'ferry-failover-');
    const nodes = [];
    for (let n = 0; n < NODES; n++)
      nodes.push(
        await startNode(ctx, svc, {
          name: `n${n + 1}`,
          key: gw.key1,
          allowPaths: [root],
          env: { FERRY_LOG_LEVEL: 'warn' },
        }),
      );
    mkdirSync(join(root, 'in'), { recursive: true });
    mkdirSync(join(root, 'out'), { recursive: true });
    for (let f = 0; f < TASKS; f++)
      writeFileSync(join(root, 'in', `f${String(f).padStart(4, '0')}.bin`), randomBytes(32 * 1024));
    for (const d of ['in', 'out'])
      await svc.api.call('POST', '/api/v1/linked-services', {
        name: d,
        type: 'filesystem',
        gateway: 'bench',
        properties: { root: join(root, d) },
      });
    // Each task takes about half a second, so the run lasts long enough to kill the dispatcher in it.
    await svc.api.call('PUT', '/api/v1/pipelines', {
      name: 'p',
      activities: [
        {
          name: 'a',
          source: { linkedService: 'in', filesPerTask: 1 },
          sink: { linkedService: 'out' },
          maxBytesPerSecond: 64 * 1024,
        },
      ],
    });
    const { id } = await svc.api.call('POST', '/api/v1/pipelines/p/runs');
    for (;;) {
      const r = await svc.api.call('GET', `/api/v1/runs/${id}?tasks=false`);
      if (r.progress.tasksDone >= TASKS * 0.2) break;
      await sleep(100);
    }
    const before = await svc.api.call('GET', '/api/v1/gateways/bench');
    const victim = nodes.find((n) => n.name === before.dispatcher);
    if (!victim) throw new Error('no dispatcher');
    const killedAt = Date.now();
    victim.proc.kill('SIGKILL');
    let run;
    for (;;) {
      run = await svc.api.call('GET', `/api/v1/runs/${id}?tasks=false`);
      if (run.status === 'succeeded' || run.status === 'failed') break;
      await sleep(250);
    }
    run = await svc.api.call('GET', `/api/v1/runs/${id}`);
    if (run.status !== 'succeeded') throw new Error(`round ${i}: run failed: ${run.error}`);
    const after = await svc.api.call('GET', '/api/v1/gateways/bench');
    const attempts = run.tasks.flatMap((t: any) => t.attemptList);
    const firstNew = Math.min(
      ...attempts.filter((a: any) => a.epoch > before.epoch).map((a: any) => Date.parse(a.claimedAt)),
    );
    const outFiles = readdirSync(join(root, 'out')).filter((f) => !f.startsWith('.'));
    const same =
      JSON.stringify([...treeDigest(join(root, 'out'))].sort()) ===
      JSON.stringify([...treeDigest(join(root, 'in'))].sort());
    return {
      failoverMs: firstNew - killedAt,
      lostAttempts: attempts.filter((a: any) => a.status === 'lost').length,
      files: outFiles.length,
      identical: same,
      reason: after.dispatcherReason,
    };
  } finally {
    await ctx.close();
  }
}

export async function run(): Promise<void> {
  const rounds = [];
  for (let i = 1; i <= ROUNDS; i++) {
    const r = await round(i);
    process.stderr.write(
      `failover round ${i}: ${r.failoverMs} ms, ${r.files} files, identical=${r.identical}, lost attempts re-run=${r.lostAttempts}\n`,
    );
    rounds.push(r);
  }
  const ms = rounds.map((r) => r.failoverMs);
  const result = {
    tasks: TASKS,
    nodes: NODES,
    rounds,
    failoverMs: { median: median(ms), min: Math.min(...ms), max: Math.max(...ms) },
    outputs: {
      allIdentical: rounds.every((r) => r.identical && r.files === TASKS),
      missing: rounds.reduce((a, r) => a + (TASKS - r.files), 0),
    },
    target: { failoverMs: 5000, peers: { kafkaConnectDefaultMs: 300_000, nifiNodeDropMs: 40_000 } },
  };
  const file = writeResult('failover', result);
  process.stdout.write(`${JSON.stringify({ ...result, rounds: undefined }, null, 2)}\nwritten to ${file}\n`);
}

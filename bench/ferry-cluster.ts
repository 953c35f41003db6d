/**
 * Ferry as a user runs it, for the throughput benchmarks: one `ferry service` and `ferry node`
 * processes, grouped into gateways (a gateway of 1 node and one of 2 can live side by side; idle
 * nodes only heartbeat). A measured run is one pipeline run: its time is the service's own, from the
 * run being created to its last task settling, and the peak RSS of the gateway's node processes over
 * it is recorded beside.
 *
 * BENCH_NODE_ARGS adds `ferry node` flags (e.g. `--limit 32`) for experiments.
 * BENCH_NODE_OPTIONS is passed to the node processes only (e.g. `--cpu-prof --cpu-prof-dir=/tmp/p`);
 * then the nodes are stopped with SIGTERM at the end so they write their profiles. BENCH_NODE_LOG_DIR
 * keeps what each node printed; BENCH_DUMP_DIR every run's record (tasks, attempts, times).
 */
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import type { BenchContext } from './lib.ts';
import { ProcessMeter, type ProcessReport } from './process-meter.ts';
import {
  eventually,
  startNode,
  startService,
  type NodeHandle,
  type ServiceHandle,
} from '../test/helpers/cluster.ts';

export interface FerryRun {
  ms: number;
  /** Peak RSS of the gateway's node processes. */
  rssPeakBytes: number;
  /** Peak RSS of a node together with its child processes (Parquet converters). */
  rssTreePeakBytes: number;
  /** RSS and CPU of the nodes, the service and whatever else `observe` names (Azurite). */
  processes: ProcessReport;
  /** The run with its tasks, as GET /api/v1/runs/ID returns it. */
  run: any;
}

export class FerryCluster {
  readonly svc: ServiceHandle;
  readonly nodes = new Map<string, NodeHandle[]>();
  /** Other processes whose CPU is recorded with each run (name -> pid), e.g. the store's emulator. */
  observe: Record<string, number> = {};

  constructor(svc: ServiceHandle) {
    this.svc = svc;
  }

  pids(gateway: string): number[] {
    return (this.nodes.get(gateway) ?? []).map((n) => n.proc.pid);
  }

  async linkedService(name: string, type: string, gateway: string, properties: object): Promise<void> {
    await this.svc.api.call('POST', '/api/v1/linked-services', { name, type, gateway, properties });
  }

  /** Applies the pipeline, runs it, waits for it; fails unless it succeeded. */
  async run(gateway: string, pipeline: { name: string; activities: unknown[] }): Promise<FerryRun> {
    const api = this.svc.api;
    await api.call('PUT', '/api/v1/pipelines', pipeline);
    const nodes = Object.fromEntries((this.nodes.get(gateway) ?? []).map((n) => [n.name, n.proc.pid]));
    const meter = new ProcessMeter(
      { ...nodes, service: this.svc.proc.pid, ...this.observe },
      Object.keys(nodes),
    );
    meter.start();
    const { id } = await api.call('POST', `/api/v1/pipelines/${pipeline.name}/runs`);
    for (;;) {
      const r = await api.call('GET', `/api/v1/runs/${id}?tasks=false`);
      if (r.status === 'succeeded' || r.status === 'failed') break;
      await sleep(100);
    }
    const processes = meter.stop();
    const run = await api.call('GET', `/api/v1/runs/${id}`);
    const dump = process.env['BENCH_DUMP_DIR'];
    if (dump) writeFileSync(join(dump, `${pipeline.name}-${id}.json`), JSON.stringify(run, null, 2));
    if (run.status !== 'succeeded')
      throw new Error(`ferry run ${pipeline.name} failed: ${JSON.stringify(run.error)}`);
    return {
      ms: Date.parse(run.finishedAt) - Date.parse(run.createdAt),
      rssPeakBytes: processes.peakRssBytes,
      rssTreePeakBytes: processes.peakTreeRssBytes,
      processes,
      run,
    };
  }
}

/** Starts a service and, per gateway, that many nodes allowed to touch `allowPaths`. */
export async function startFerry(
  ctx: BenchContext,
  o: { gateways: Record<string, number>; allowPaths: string[]; nodeArgs?: string[] },
): Promise<FerryCluster> {
  const quiet = { FERRY_LOG_LEVEL: 'warn' };
  const svc = await startService(ctx, { env: quiet });
  const cluster = new FerryCluster(svc);
  const nodeOptions = process.env['BENCH_NODE_OPTIONS'];
  for (const [gateway, count] of Object.entries(o.gateways)) {
    const gw = await svc.api.call('POST', '/api/v1/gateways', { name: gateway });
    const nodes: NodeHandle[] = [];
    for (let i = 0; i < count; i++) {
      nodes.push(
        await startNode(ctx, svc, {
          name: `${gateway}-n${i + 1}`,
          key: gw.key1,
          allowPaths: o.allowPaths,
          extraArgs: [
            ...(o.nodeArgs ?? []),
            ...(process.env['BENCH_NODE_ARGS'] ?? '').split(' ').filter(Boolean),
          ],
          env: { ...quiet, ...(nodeOptions ? { NODE_OPTIONS: nodeOptions } : {}) },
        }),
      );
    }
    cluster.nodes.set(gateway, nodes);
    await eventually(`${gateway}: ${count} nodes online with a dispatcher`, async () => {
      const res = await svc.api.call('GET', `/api/v1/gateways/${gateway}/nodes`);
      return (
        res.nodes.length === count &&
        res.nodes.every((n: { status: string }) => n.status === 'Online') &&
        res.gateway.dispatcher !== null
      );
    });
  }
  const logDir = process.env['BENCH_NODE_LOG_DIR'];
  if (logDir) {
    // What the nodes printed (with BENCH_NODE_OPTIONS=--trace-gc, their GC log), kept for a look.
    ctx.after(() => {
      for (const n of [...cluster.nodes.values()].flat())
        writeFileSync(join(logDir, `${n.name}-${n.proc.pid}.log`), n.proc.output);
    });
  }
  if (nodeOptions) {
    // Registered last, so it runs before the cluster's SIGKILL cleanup: profiles need a clean exit.
    ctx.after(async () => {
      const procs = [...cluster.nodes.values()].flat().map((n) => n.proc);
      for (const p of procs) p.kill('SIGTERM');
      await Promise.race([Promise.all(procs.map((p) => p.exited)), sleep(30_000)]);
    });
  }
  return cluster;
}

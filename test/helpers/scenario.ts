/** Common set-ups: a gateway with N nodes, a file tree to copy, a pipeline applied and run. */
import { mkdirSync, readdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { createHash, randomBytes } from 'node:crypto';
import { join, relative } from 'node:path';
import type { TestContext } from 'node:test';
import {
  eventually,
  startNode,
  startService,
  tempDir,
  type NodeHandle,
  type ServiceHandle,
  type ServiceStartOptions,
} from './cluster.ts';

type Ctx = Pick<TestContext, 'after'>;

export interface Gateway {
  svc: ServiceHandle;
  gateway: string;
  key: string;
  nodes: NodeHandle[];
  /** A folder every node may read and write. */
  root: string;
}

export async function gatewayWithNodes(
  t: Ctx,
  count: number,
  o: { service?: ServiceStartOptions; nodeArgs?: string[]; gateway?: string; env?: NodeJS.ProcessEnv } = {},
): Promise<Gateway> {
  const svc = await startService(t, o.service);
  const gateway = o.gateway ?? 'gw';
  const created = await svc.api.call('POST', '/api/v1/gateways', { name: gateway });
  const root = tempDir(t, 'ferry-data-');
  const nodes: NodeHandle[] = [];
  for (let i = 0; i < count; i++) {
    // Started one by one so registration order (and so election ties) is predictable.
    nodes.push(
      await startNode(t, svc, {
        name: `node-${i + 1}`,
        key: created.key1,
        allowPaths: [root],
        extraArgs: o.nodeArgs ?? [],
        env: o.env ?? {},
      }),
    );
  }
  const allOnlineAt = await eventually(`${count} nodes Online`, async () => {
    const res = await svc.api.call('GET', `/api/v1/gateways/${gateway}/nodes`);
    const ready =
      res.nodes.length === count &&
      res.nodes.every((n: { status: string }) => n.status === 'Online') &&
      res.gateway.dispatcher !== null;
    return ready ? Date.now() : undefined;
  });
  // The dispatcher learns its peers from its heartbeat replies: wait for one sent after every node
  // was Online, or its first claims would offer only the nodes it knew before.
  await eventually('the dispatcher to hear of every node', async () => {
    const res = await svc.api.call('GET', `/api/v1/gateways/${gateway}/nodes`);
    const dispatcher = res.nodes.find((n: { role: string }) => n.role === 'dispatcher');
    return dispatcher !== undefined && Date.parse(dispatcher.lastSeenAt) > allOnlineAt;
  });
  return { svc, gateway, key: created.key1, nodes, root };
}

/** Writes `count` files of random bytes (sizes vary) under root/dir; returns their relative paths. */
export function makeFiles(root: string, dir: string, count: number, size: (i: number) => number): string[] {
  const out: string[] = [];
  for (let i = 0; i < count; i++) {
    const rel = join(dir, `sub${i % 4}`, `file-${String(i).padStart(4, '0')}.bin`);
    mkdirSync(join(root, dir, `sub${i % 4}`), { recursive: true });
    writeFileSync(join(root, rel), randomBytes(size(i)));
    out.push(rel);
  }
  return out;
}

/** Every file below `dir` (relative path -> sha256), staging folders included so tests can see them. */
export function treeDigest(dir: string): Map<string, string> {
  const out = new Map<string, string>();
  const walk = (d: string): void => {
    for (const name of readdirSync(d)) {
      const p = join(d, name);
      if (statSync(p).isDirectory()) walk(p);
      else out.set(relative(dir, p), createHash('sha256').update(readFileSync(p)).digest('hex'));
    }
  };
  walk(dir);
  return out;
}

/** name -> sha256 of the outputs a run's copy tasks recorded, to compare with a treeDigest. */
export function reportedDigests(run: any): Map<string, string> {
  const copies = run.tasks.filter((tk: any) => tk.kind === 'copy');
  return new Map(copies.flatMap((tk: any) => tk.outputs.map((o: any) => [o.name, o.sha256])));
}

export async function fsLinkedServices(
  g: Gateway,
  names: { in: string; out: string },
  dirs: { in: string; out: string },
): Promise<void> {
  mkdirSync(join(g.root, dirs.in), { recursive: true });
  mkdirSync(join(g.root, dirs.out), { recursive: true });
  await g.svc.api.call('POST', '/api/v1/linked-services', {
    name: names.in,
    type: 'filesystem',
    gateway: g.gateway,
    properties: { root: join(g.root, dirs.in) },
  });
  await g.svc.api.call('POST', '/api/v1/linked-services', {
    name: names.out,
    type: 'filesystem',
    gateway: g.gateway,
    properties: { root: join(g.root, dirs.out) },
  });
}

export async function runPipeline(g: Gateway, spec: unknown): Promise<string> {
  const p = await g.svc.api.call('PUT', '/api/v1/pipelines', spec);
  const run = await g.svc.api.call('POST', `/api/v1/pipelines/${p.name}/runs`);
  return run.id as string;
}

export async function waitRun(g: Gateway, runId: string, timeoutMs = 60_000): Promise<any> {
  return eventually(
    `run ${runId} to finish`,
    async () => {
      const r = await g.svc.api.call('GET', `/api/v1/runs/${runId}`);
      return r.status === 'succeeded' || r.status === 'failed' ? r : undefined;
    },
    timeoutMs,
    200,
  );
}

export async function nodesView(g: Gateway): Promise<any> {
  return g.svc.api.call('GET', `/api/v1/gateways/${g.gateway}/nodes`);
}

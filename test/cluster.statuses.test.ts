/**
 * Node statuses a real cluster derives from what its nodes report: a node running a newer version
 * than the gateway's is Limited (version_mismatch) and gets no tasks; a node that cannot serve the
 * gateway's node-to-node encryption mode (tls, its certificate file missing) is Inactive
 * (config_mismatch) and gets no tasks either.
 *
 * One gateway of two ordinary nodes serves the file; each test adds its odd node to it.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { eventually, startNode, tempDir, type NodeHandle } from './helpers/cluster.ts';
import {
  fsLinkedServices,
  gatewayWithNodes,
  makeFiles,
  nodesView,
  runPipeline,
  treeDigest,
  waitRun,
  type Gateway,
} from './helpers/scenario.ts';
import { ferryVersion } from '../src/common/version.ts';

/** Copies `files` one file per task with both ordinary nodes saturated; returns the finished run. */
async function copyRun(g: Gateway, name: string, files: number): Promise<any> {
  await fsLinkedServices(
    g,
    { in: `${name}-in`, out: `${name}-out` },
    { in: `${name}-in`, out: `${name}-out` },
  );
  makeFiles(join(g.root, `${name}-in`), '', files, (i) => 32 * 1024 + i * 1024);
  const runId = await runPipeline(g, {
    name,
    activities: [
      {
        name: 'files',
        source: { linkedService: `${name}-in`, filesPerTask: 1 },
        sink: { linkedService: `${name}-out` },
        // Slow enough that every ordinary node is full while tasks are still queued.
        maxBytesPerSecond: 64 * 1024,
      },
    ],
  });
  const run = await waitRun(g, runId, 60_000);
  assert.equal(run.status, 'succeeded', JSON.stringify(run.error));
  assert.deepEqual(treeDigest(join(g.root, `${name}-out`)), treeDigest(join(g.root, `${name}-in`)));
  return run;
}

function nodesOf(run: any): Set<string> {
  return new Set(run.tasks.flatMap((tk: any) => tk.attemptList.map((a: any) => a.node as string)));
}

describe('statuses from a real cluster', () => {
  const cleanups: (() => unknown)[] = [];
  const ctx = { after: (fn: () => unknown) => void cleanups.push(fn) };
  let g: Gateway;

  before(async () => {
    g = await gatewayWithNodes(ctx, 2, { nodeArgs: ['--limit', '2'] });
  });
  after(async () => {
    for (const fn of cleanups.reverse()) await fn();
  });

  test('a node on a higher version than the gateway registers, is Limited (version_mismatch) and gets no tasks', async () => {
    const newer: NodeHandle = await startNode(ctx, g.svc, {
      name: 'node-new',
      key: g.key,
      allowPaths: [g.root],
      extraArgs: ['--limit', '4'],
      env: { FERRY_NODE_VERSION: '9.9.9' },
    });
    const v = await eventually('node-new listed and Limited', async () => {
      const res = await nodesView(g);
      const n = res.nodes.find((x: any) => x.name === 'node-new');
      return n?.status === 'Limited' ? res : undefined;
    });
    const n = v.nodes.find((x: any) => x.name === 'node-new');
    assert.equal(n.version, '9.9.9');
    assert.equal(n.statusReason, 'version_mismatch');
    assert.equal(
      n.statusHint,
      `node-new runs 9.9.9; the gateway version is ${ferryVersion()}: update it to ${ferryVersion()}`,
    );
    assert.equal(n.role, 'worker');
    assert.equal(v.gateway.version, ferryVersion(), 'two of three nodes set the gateway version');
    assert.equal(v.gateway.status, 'Limited');
    assert.match(v.gateway.statusHint, /node-new Limited/);
    for (const other of v.nodes.filter((x: any) => x.name !== 'node-new'))
      assert.equal(other.status, 'Online');

    const run = await copyRun(g, 'vers', 12);
    const used = nodesOf(run);
    assert.equal(used.has('node-new'), false, `tasks ran on ${[...used].join(', ')}`);
    assert.deepEqual([...used].sort(), ['node-1', 'node-2']);
    const after = await nodesView(g);
    assert.notEqual(after.gateway.dispatcher, 'node-new', 'it may not be dispatcher either');

    newer.proc.kill('SIGKILL');
    await newer.proc.exited;
    await g.svc.api.call('DELETE', `/api/v1/gateways/${g.gateway}/nodes/node-new`);
  });

  test("a node that cannot serve the gateway's encryption mode is Inactive (config_mismatch) and gets no tasks", async () => {
    await g.svc.api.call('PATCH', `/api/v1/gateways/${g.gateway}`, { encryption: 'tls' });
    await eventually('node-1 and node-2 in TLS only', async () => {
      const res = await nodesView(g);
      return res.nodes.every((x: any) => x.transport === 'tls' && x.status === 'Online');
    });
    const missing = join(tempDir(ctx, 'ferry-tls-'), 'node.pem');
    const odd = await startNode(ctx, g.svc, {
      name: 'node-tls',
      key: g.key,
      allowPaths: [g.root],
      extraArgs: ['--limit', '4', '--tls-cert', missing, '--tls-key', missing, '--tls-ca', missing],
    });
    const v = await eventually('node-tls listed and Inactive', async () => {
      const res = await nodesView(g);
      const n = res.nodes.find((x: any) => x.name === 'node-tls');
      return n?.status === 'Inactive' ? res : undefined;
    });
    const n = v.nodes.find((x: any) => x.name === 'node-tls');
    assert.equal(n.tls, false);
    assert.equal(n.statusReason, 'config_mismatch');
    assert.match(
      n.statusHint,
      /^node-tls cannot switch to TLS: cannot read --tls-cert .*node\.pem: no such file; the gateway's encryption mode is tls: /,
    );
    assert.equal(n.version, ferryVersion());
    assert.equal(v.gateway.status, 'Limited');
    assert.match(v.gateway.statusHint, /node-tls Inactive/);
    for (const other of v.nodes.filter((x: any) => x.name === 'node-1' || x.name === 'node-2'))
      assert.equal(other.status, 'Online', `${other.name}: ${other.statusHint}`);

    const run = await copyRun(g, 'tlsmix', 10);
    const used = nodesOf(run);
    assert.equal(used.has('node-tls'), false, `tasks ran on ${[...used].join(', ')}`);
    assert.notEqual((await nodesView(g)).gateway.dispatcher, 'node-tls');

    odd.proc.kill('SIGKILL');
    await odd.proc.exited;
    await g.svc.api.call('DELETE', `/api/v1/gateways/${g.gateway}/nodes/node-tls`);
    await g.svc.api.call('PATCH', `/api/v1/gateways/${g.gateway}`, { encryption: 'none' });
  });
});

/**
 * Eight real node processes on one logical gateway (twice the seed's four-node cap): all Online, one
 * dispatcher, the seed's monitoring columns filled from heartbeats, the CLI lists them all; then a
 * worker is killed with -9 and only it goes Offline while the gateway turns Limited.
 *
 * The eight nodes are started once for the file (they take a while on two cores); the tests run in
 * order against them and the last one kills a node.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { ADMIN_TOKEN, cli, eventually } from './helpers/cluster.ts';
import { gatewayWithNodes, nodesView, type Gateway } from './helpers/scenario.ts';
import { ferryVersion } from '../src/common/version.ts';

const COUNT = 8;

describe('a gateway of 8 nodes', () => {
  const cleanups: (() => unknown)[] = [];
  const ctx = { after: (fn: () => unknown) => void cleanups.push(fn) };
  let g: Gateway;

  before(async () => {
    g = await gatewayWithNodes(ctx, COUNT, { nodeArgs: ['--limit', '2'] });
  });
  after(async () => {
    for (const fn of cleanups.reverse()) await fn();
  });

  test('all 8 nodes are Online with exactly one dispatcher; the gateway is Online at the package version', async () => {
    const v = await nodesView(g);
    assert.equal(v.nodes.length, COUNT);
    assert.deepEqual(
      v.nodes.map((n: any) => n.name).sort(),
      Array.from({ length: COUNT }, (_, i) => `node-${i + 1}`).sort(),
    );
    for (const n of v.nodes) assert.equal(n.status, 'Online', `${n.name}: ${n.statusHint}`);
    const dispatchers = v.nodes.filter((n: any) => n.role === 'dispatcher');
    assert.equal(dispatchers.length, 1);
    assert.equal(v.gateway.dispatcher, dispatchers[0].name);
    assert.equal(v.gateway.status, 'Online');
    assert.equal(v.gateway.statusReason, 'ok');
    assert.equal(v.gateway.version, ferryVersion());
    assert.equal(v.gateway.nodes, COUNT);
    assert.ok(v.gateway.epoch >= 1);
  });

  test("every node view carries the seed's monitoring columns, filled from heartbeats", async () => {
    const v = await eventually('every node to have sent metrics', async () => {
      const res = await nodesView(g);
      return res.nodes.every((n: any) => n.cpuPercent !== null && n.memoryAvailableBytes !== null)
        ? res
        : undefined;
    });
    for (const n of v.nodes) {
      const what = `${n.name}: ${JSON.stringify(n)}`;
      assert.equal(typeof n.cpuPercent, 'number', what);
      assert.ok(n.cpuPercent >= 0 && n.cpuPercent <= 100, what);
      assert.equal(typeof n.memoryAvailableBytes, 'number', what);
      assert.ok(n.memoryAvailableBytes > 0, what);
      assert.ok(n.memoryTotalBytes >= n.memoryAvailableBytes, what);
      assert.equal(typeof n.networkInBytesPerSec, 'number', what);
      assert.equal(typeof n.networkOutBytesPerSec, 'number', what);
      assert.ok(n.networkInBytesPerSec >= 0 && n.networkOutBytesPerSec >= 0, what);
      assert.equal(n.jobsRunning, 0, what);
      assert.equal(n.jobsLimit, 2, what);
      assert.ok(n.jobsLimit >= 1, what);
      assert.equal(n.version, ferryVersion(), what);
      assert.ok(n.role === 'dispatcher' || n.role === 'worker', what);
      assert.equal(n.drain, null, what);
      assert.match(n.peerAddress, /^127\.0\.0\.1:\d+$/, what);
      // Heard from within the last few seconds.
      assert.ok(Date.now() - Date.parse(n.lastSeenAt) < 5000, what);
    }
  });

  test('`ferry node list gw` prints all 8 nodes', async () => {
    const res = await cli(['--service', g.svc.url, '--token', ADMIN_TOKEN, 'node', 'list', g.gateway]);
    assert.equal(res.code, 0, res.stderr);
    const lines = res.stdout.trim().split('\n');
    assert.match(lines[0] ?? '', /^NAME\s+STATUS\s+VERSION\s+ROLE\s+CPU\s+MEM AVAIL\s+NET IN\/OUT\s+JOBS/);
    assert.equal(lines.length, COUNT + 1, res.stdout);
    for (let i = 1; i <= COUNT; i++) {
      const line = lines.find((l) => l.startsWith(`node-${i} `));
      assert.ok(line, `node-${i} listed:\n${res.stdout}`);
      assert.match(line, /\bOnline\b/);
      assert.match(line, new RegExp(`\\b${ferryVersion().replaceAll('.', '\\.')}\\b`));
      assert.match(line, /\b(dispatcher|worker)\b/);
      assert.match(line, /\b0\/2\b/, 'jobs running/limit');
    }
    assert.equal(lines.filter((l) => /\bdispatcher\b/.test(l)).length, 1);

    const json = await cli([
      '--service',
      g.svc.url,
      '--token',
      ADMIN_TOKEN,
      '--json',
      'node',
      'list',
      g.gateway,
    ]);
    assert.equal(json.code, 0, json.stderr);
    assert.equal(JSON.parse(json.stdout).nodes.length, COUNT);
  });

  test('kill -9 of a worker: it alone goes Offline with a reason naming it; the gateway turns Limited', async () => {
    const before = await nodesView(g);
    const victimName: string = before.nodes.find((n: any) => n.role === 'worker').name;
    const victim = g.nodes.find((n) => n.name === victimName);
    assert.ok(victim);
    victim.proc.kill('SIGKILL');
    await victim.proc.exited;

    // Until it is Offline, every other node stays Online at every sample.
    const violations: string[] = [];
    const offline = await eventually(
      `${victimName} Offline`,
      async () => {
        const v = await nodesView(g);
        for (const n of v.nodes)
          if (n.name !== victimName && n.status !== 'Online')
            violations.push(`${n.name} ${n.status}: ${n.statusHint}`);
        const mine = v.nodes.find((n: any) => n.name === victimName);
        return mine.status === 'Offline' ? v : undefined;
      },
      20_000,
      200,
    );
    assert.deepEqual(violations, []);
    const seenAt = Date.now();
    const mine = offline.nodes.find((n: any) => n.name === victimName);
    assert.equal(mine.statusReason, 'no_heartbeat');
    assert.match(mine.statusHint, new RegExp(`no heartbeat from ${victimName} for \\d+\\.\\d s`));
    assert.equal(offline.gateway.status, 'Limited');
    assert.equal(offline.gateway.statusReason, 'some_nodes_unhealthy');
    assert.match(offline.gateway.statusHint, new RegExp(`${victimName} Offline`));
    assert.equal(offline.gateway.dispatcher, before.gateway.dispatcher, 'the dispatcher did not change');

    // After a fresh heartbeat from every survivor, they are still all Online and the gateway Limited.
    const settled = await eventually('a fresh heartbeat from every other node', async () => {
      const v = await nodesView(g);
      const others = v.nodes.filter((n: any) => n.name !== victimName);
      return others.every((n: any) => Date.parse(n.lastSeenAt) > seenAt) ? v : undefined;
    });
    for (const n of settled.nodes) {
      if (n.name === victimName) assert.equal(n.status, 'Offline');
      else assert.equal(n.status, 'Online', `${n.name}: ${n.statusHint}`);
    }
    assert.equal(settled.gateway.status, 'Limited');
    assert.match(
      settled.gateway.statusHint,
      new RegExp(`^not all nodes are healthy: ${victimName} Offline$`),
    );
  });
});

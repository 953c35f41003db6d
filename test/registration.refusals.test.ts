/**
 * Node registration with real `ferry node` processes: every refusal (wrong key, taken name, a data dir
 * of another gateway, a lower version, a changed name, the gateway's cap) ends the process with exit
 * code 1 and one `ferry: <reason>` line that says what to do; a restart with the same data dir is the
 * same node; `ferry node status` and `ferry node leave` work on the data dir.
 */
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import {
  ROOT,
  cli,
  eventually,
  startNode,
  startService,
  tempDir,
  type NodeStartOptions,
  type ServiceHandle,
} from './helpers/cluster.ts';

type Ctx = Parameters<typeof startService>[0];

const PACKAGE_VERSION = (JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')) as { version: string })
  .version;

/** Starts a node that is expected to be refused: waits for it to exit; returns its exit code and output. */
async function refusedNode(
  t: Ctx,
  svc: ServiceHandle,
  o: NodeStartOptions,
): Promise<{ code: number | null; output: string }> {
  const node = await startNode(t, svc, { ...o, wait: false });
  const { code } = await node.proc.exited;
  assert.doesNotMatch(node.proc.output, /"msg":"node running"/, 'the refused node never ran');
  return { code, output: node.proc.output };
}

/** The `ferry: ...` line a failed command printed, and its hint line if any. */
function reason(output: string): { message: string; hint: string } {
  const lines = output.split('\n');
  const i = lines.findIndex((l) => l.startsWith('ferry: '));
  assert.ok(i >= 0, `a "ferry: <reason>" line in:\n${output}`);
  const next = lines[i + 1] ?? '';
  return { message: lines[i] ?? '', hint: next.startsWith('  hint: ') ? next : '' };
}

async function nodesOf(svc: ServiceHandle, gateway: string): Promise<any[]> {
  return (await svc.api.call('GET', `/api/v1/gateways/${gateway}/nodes`)).nodes;
}

async function createGateway(svc: ServiceHandle, name: string): Promise<{ key1: string; key2: string }> {
  return svc.api.call('POST', '/api/v1/gateways', { name });
}

function registrationOf(dataDir: string): { nodeId: string; nodeName: string; gatewayName: string } {
  return JSON.parse(readFileSync(join(dataDir, 'node.json'), 'utf8'));
}

// Each test has its own service and data dirs, so two run at once (most of the time is waiting).
describe('node registration', { concurrency: 2 }, () => {
  test('a wrong key is refused: the message says the key is not valid and points to `ferry gateway keys`', async (t) => {
    const svc = await startService(t);
    await createGateway(svc, 'gw');
    const dataDir = tempDir(t, 'ferry-wrong-key-');

    const r = await refusedNode(t, svc, { name: 'n1', key: 'ferry_gw_not-a-real-key', dataDir });
    assert.equal(r.code, 1, r.output);
    const { message, hint } = reason(r.output);
    assert.equal(message, 'ferry: the authentication key is not valid for any gateway');
    assert.match(hint, /`ferry gateway keys GATEWAY`/);
    assert.deepEqual(await nodesOf(svc, 'gw'), []);
    assert.throws(() => readFileSync(join(dataDir, 'node.json')), { code: 'ENOENT' }, 'nothing registered');
  });

  test('a name another node of the gateway holds is refused, naming the node and how to remove it', async (t) => {
    const svc = await startService(t);
    const { key1, key2 } = await createGateway(svc, 'gw');
    await startNode(t, svc, { name: 'node-a', key: key1 });

    // Another machine (its own data dir), even with the other key, cannot take the name.
    const r = await refusedNode(t, svc, { name: 'node-a', key: key2 });
    assert.equal(r.code, 1, r.output);
    const { message, hint } = reason(r.output);
    assert.equal(message, 'ferry: gateway "gw" already has a node named "node-a"');
    assert.match(hint, /--name/);
    assert.match(hint, /`ferry node delete gw node-a`/);

    const nodes = await nodesOf(svc, 'gw');
    assert.deepEqual(
      nodes.map((n) => n.name),
      ['node-a'],
    );
  });

  test('a data dir registered to gateway A refuses the key of gateway B until `ferry node leave`; then it joins B', async (t) => {
    const svc = await startService(t);
    const a = await createGateway(svc, 'gw-a');
    const b = await createGateway(svc, 'gw-b');
    const dataDir = tempDir(t, 'ferry-mover-');

    const first = await startNode(t, svc, { name: 'mover', key: a.key1, dataDir });
    await eventually('mover Online in gw-a', async () =>
      (await nodesOf(svc, 'gw-a')).some((n) => n.name === 'mover' && n.status === 'Online'),
    );
    first.proc.kill('SIGTERM');
    assert.equal((await first.proc.exited).code, 0, first.proc.output);

    const r = await refusedNode(t, svc, { name: 'mover', key: b.key1, dataDir });
    assert.equal(r.code, 1, r.output);
    const { message, hint } = reason(r.output);
    assert.match(
      message,
      /^ferry: this machine \(data dir .*\) is registered to gateway "gw-a" as node "mover"/,
    );
    assert.match(message, /cannot join gateway "gw-b"/);
    assert.match(hint, new RegExp(`\`ferry node leave --data-dir ${dataDir}\``));
    assert.equal(registrationOf(dataDir).gatewayName, 'gw-a', 'the registration is untouched');
    assert.deepEqual(await nodesOf(svc, 'gw-b'), []);

    const leave = await cli(['node', 'leave', '--data-dir', dataDir]);
    assert.equal(leave.code, 0, leave.stderr);
    assert.match(leave.stdout, /node mover left gateway gw-a/);
    assert.deepEqual(await nodesOf(svc, 'gw-a'), [], 'gone from gw-a');
    assert.throws(
      () => readFileSync(join(dataDir, 'node.json')),
      { code: 'ENOENT' },
      'registration forgotten',
    );

    await startNode(t, svc, { name: 'mover', key: b.key1, dataDir });
    assert.equal(registrationOf(dataDir).gatewayName, 'gw-b');
    await eventually('mover Online in gw-b', async () => {
      const nodes = await nodesOf(svc, 'gw-b');
      return nodes.length === 1 && nodes[0].name === 'mover' && nodes[0].status === 'Online';
    });
    assert.deepEqual(await nodesOf(svc, 'gw-a'), []);
  });

  test('a node whose version is lower than the gateway version is refused; the message names both versions', async (t) => {
    const svc = await startService(t);
    const { key1 } = await createGateway(svc, 'gw');
    await startNode(t, svc, { name: 'current', key: key1 });
    assert.equal((await svc.api.call('GET', '/api/v1/gateways/gw')).version, PACKAGE_VERSION);

    const r = await refusedNode(t, svc, { name: 'old', key: key1, env: { FERRY_NODE_VERSION: '0.0.1' } });
    assert.equal(r.code, 1, r.output);
    const { message, hint } = reason(r.output);
    assert.equal(message, `ferry: node version 0.0.1 is lower than gateway "gw" version ${PACKAGE_VERSION}`);
    assert.match(hint, new RegExp(`install Ferry ${PACKAGE_VERSION.replaceAll('.', '\\.')} or later`));
    assert.deepEqual(
      (await nodesOf(svc, 'gw')).map((n) => n.name),
      ['current'],
    );
  });

  test('a restart with the same data dir and no --key is the same node', async (t) => {
    const svc = await startService(t);
    const { key1 } = await createGateway(svc, 'gw');
    const dataDir = tempDir(t, 'ferry-restart-');

    const first = await startNode(t, svc, { name: 'stable', key: key1, dataDir });
    const registration = readFileSync(join(dataDir, 'node.json'), 'utf8');
    const { nodeId } = registrationOf(dataDir);
    await eventually('stable Online', async () => (await nodesOf(svc, 'gw'))[0]?.status === 'Online');

    first.proc.kill('SIGTERM');
    assert.equal((await first.proc.exited).code, 0, first.proc.output);
    // It told the service it left: Offline at once, still a member.
    const offline = await nodesOf(svc, 'gw');
    assert.equal(offline.length, 1);
    assert.equal(offline[0].status, 'Offline');

    const second = await startNode(t, svc, { name: 'stable', dataDir });
    assert.doesNotMatch(second.proc.output, /"msg":"registered"/, 'did not register again');
    const nodes = await eventually('stable Online again', async () => {
      const list = await nodesOf(svc, 'gw');
      return list.length === 1 && list[0].name === 'stable' && list[0].status === 'Online' ? list : undefined;
    });
    assert.equal(nodes.length, 1);
    assert.equal(readFileSync(join(dataDir, 'node.json'), 'utf8'), registration, 'node.json unchanged');
    assert.equal(registrationOf(dataDir).nodeId, nodeId);
  });

  test("a node's name never changes: restarting its data dir with another --name is refused", async (t) => {
    const svc = await startService(t);
    const { key1 } = await createGateway(svc, 'gw');
    const dataDir = tempDir(t, 'ferry-rename-');

    const first = await startNode(t, svc, { name: 'original', key: key1, dataDir });
    first.proc.kill('SIGTERM');
    assert.equal((await first.proc.exited).code, 0, first.proc.output);

    const r = await refusedNode(t, svc, { name: 'renamed', dataDir });
    assert.equal(r.code, 1, r.output);
    const { message, hint } = reason(r.output);
    assert.equal(message, 'ferry: this node is registered as "original"; node names cannot change');
    assert.match(hint, /drop --name/);
    assert.match(hint, /ferry node leave --data-dir/);

    // With the key as well: still refused, and the registration is untouched.
    const withKey = await refusedNode(t, svc, { name: 'renamed', key: key1, dataDir });
    assert.equal(withKey.code, 1, withKey.output);
    assert.match(reason(withKey.output).message, /node names cannot change/);
    assert.equal(registrationOf(dataDir).nodeName, 'original');
    assert.deepEqual(
      (await nodesOf(svc, 'gw')).map((n) => n.name),
      ['original'],
    );
  });

  test('the per-gateway maximum: none by default; with maxNodes=2 a third node is refused until it is lifted', async (t) => {
    const svc = await startService(t);
    const created = await svc.api.call('POST', '/api/v1/gateways', { name: 'gw' });
    assert.equal(created.maxNodes, null, 'no cap by default');
    await startNode(t, svc, { name: 'n1', key: created.key1 });
    await startNode(t, svc, { name: 'n2', key: created.key1 });

    await svc.api.call('PATCH', '/api/v1/gateways/gw', { maxNodes: 2 });
    const dataDir = tempDir(t, 'ferry-n3-');
    const r = await refusedNode(t, svc, { name: 'n3', key: created.key1, dataDir });
    assert.equal(r.code, 1, r.output);
    const { message, hint } = reason(r.output);
    assert.equal(message, 'ferry: gateway "gw" has its maximum of 2 nodes');
    assert.match(hint, /--max-nodes/);
    assert.equal((await nodesOf(svc, 'gw')).length, 2);

    await svc.api.call('PATCH', '/api/v1/gateways/gw', { maxNodes: null });
    await startNode(t, svc, { name: 'n3', key: created.key1, dataDir });
    assert.deepEqual(
      (await nodesOf(svc, 'gw')).map((n) => n.name),
      ['n1', 'n2', 'n3'],
    );
  });

  test('`ferry node status --data-dir` shows gateway, name, connection and role while running, and "not running" after', async (t) => {
    const svc = await startService(t);
    const { key1 } = await createGateway(svc, 'gw');
    const dataDir = tempDir(t, 'ferry-status-');
    const node = await startNode(t, svc, { name: 'first', key: key1, dataDir });

    const view = await eventually('status shows the dispatcher role', async () => {
      const r = await cli(['--json', 'node', 'status', '--data-dir', dataDir]);
      assert.equal(r.code, 0, r.stderr);
      const v = JSON.parse(r.stdout);
      return v.role === 'dispatcher' ? v : undefined;
    });
    assert.equal(view.gateway, 'gw');
    assert.equal(view.node, 'first');
    assert.equal(view.service, svc.url);
    assert.equal(view.connection, 'connected');
    assert.equal(view.process, `running (pid ${node.proc.pid})`);
    assert.match(view.peerUrl, /^http:\/\/127\.0\.0\.1:\d+$/);

    const text = await cli(['node', 'status', '--data-dir', dataDir]);
    assert.equal(text.code, 0, text.stderr);
    assert.match(text.stdout, /^gateway:\s+gw$/m);
    assert.match(text.stdout, /^node:\s+first$/m);
    assert.match(text.stdout, /^connection:\s+connected$/m);
    assert.match(text.stdout, /^role:\s+dispatcher$/m);

    node.proc.kill('SIGTERM');
    assert.equal((await node.proc.exited).code, 0, node.proc.output);
    const stopped = await cli(['node', 'status', '--data-dir', dataDir]);
    assert.equal(stopped.code, 0, stopped.stderr);
    assert.match(stopped.stdout, /^gateway:\s+gw$/m);
    assert.match(stopped.stdout, /^node:\s+first$/m);
    assert.match(stopped.stdout, /^process:\s+not running$/m);
    assert.match(stopped.stdout, /^connection:\s+none$/m);

    const nowhere = await cli(['node', 'status', '--data-dir', tempDir(t, 'ferry-empty-')]);
    assert.equal(nowhere.code, 1);
    assert.match(nowhere.stderr.split('\n')[0] ?? '', /^ferry: no node is registered in /);
  });
});

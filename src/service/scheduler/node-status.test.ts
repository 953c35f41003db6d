/**
 * Node and gateway statuses as pure functions of reported facts and an explicit clock (`now`).
 * Every status carries a machine-readable reason and a hint that names the nodes involved.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import {
  computeGatewayStatus,
  computeNodeStatuses,
  encryptionSettled,
  gatewayVersion,
  versionVoters,
  type NodeFacts,
  type StatusOptions,
} from './node-status.ts';
import type { NodeStatus, StatusView } from '../../protocol/statuses.ts';
import type { PeerReachT } from '../../protocol/agent.ts';
import type { EncryptionMode } from '../../protocol/encryption.ts';

const NOW = 1_800_000_000_000;
const O: StatusOptions = { offlineAfterMs: 5000 };

let seq = 0;
function node(name: string, over: Partial<NodeFacts> = {}): NodeFacts {
  seq++;
  const tls = over.tls ?? false;
  return {
    id: `id-${name}`,
    name,
    seq,
    version: '1.0.0',
    tls,
    transport: { sendsTls: tls, acceptsPlain: !tls },
    lastSeenAt: NOW - 500,
    leftAt: null,
    upgrading: false,
    peerAddress: `10.0.0.${seq}:8060`,
    reach: [],
    ...over,
  };
}

const ok = (n: NodeFacts): PeerReachT => ({ nodeId: n.id, ok: true });
const fail = (n: NodeFacts, error: string): PeerReachT => ({ nodeId: n.id, ok: false, error });

function statuses(
  nodes: NodeFacts[],
  dispatcher: NodeFacts | null,
  now = NOW,
  encryption: EncryptionMode = 'none',
): Map<string, StatusView<NodeStatus>> {
  return computeNodeStatuses(nodes, { dispatcherNodeId: dispatcher?.id ?? null, encryption }, now, O);
}

function of(map: Map<string, StatusView<NodeStatus>>, n: NodeFacts): StatusView<NodeStatus> {
  const s = map.get(n.id);
  assert.ok(s, `a status for ${n.name}`);
  return s;
}

test('Online: a node heard from recently, like the others, reaching the dispatcher', () => {
  const a = node('node-a');
  const b = node('node-b', { reach: [ok(a)] });
  const s = statuses([a, b], a);
  assert.deepEqual(of(s, a), { status: 'Online', reason: 'ok', hint: 'node-a is connected' });
  assert.deepEqual(of(s, b), { status: 'Online', reason: 'ok', hint: 'node-b is connected' });
});

test('Offline by silence: no heartbeat within the offline timeout; the hint says for how long', () => {
  const a = node('node-a');
  const b = node('node-b', { lastSeenAt: NOW - 7300 });
  const edge = node('node-c', { lastSeenAt: NOW - 5000 }); // exactly at the timeout: still Online
  const s = statuses([a, b, edge], a);
  assert.equal(of(s, b).status, 'Offline');
  assert.equal(of(s, b).reason, 'no_heartbeat');
  assert.equal(of(s, b).hint, 'no heartbeat from node-b for 7.3 s');
  assert.equal(of(s, edge).status, 'Online');
  // The same facts a moment later: the clock alone turns it Offline.
  assert.equal(of(statuses([a, b, edge], a, NOW + 1), edge).status, 'Offline');
});

test('Offline after leaving: a node that said it is shutting down is Offline at once', () => {
  const a = node('node-a');
  const leftAt = NOW - 200;
  const b = node('node-b', { leftAt, lastSeenAt: leftAt });
  const s = of(statuses([a, b], a), b);
  assert.equal(s.status, 'Offline');
  assert.equal(s.reason, 'no_heartbeat');
  assert.equal(s.hint, `node-b shut down at ${new Date(leftAt).toISOString()}`);
});

test('Upgrading: the node said so, and that wins over every other finding', () => {
  const a = node('node-a');
  const b = node('node-b', { upgrading: true, version: '0.9.0', tls: true });
  const s = of(statuses([a, b, node('node-c')], a), b);
  assert.deepEqual(s, { status: 'Upgrading', reason: 'upgrading', hint: 'node-b is being upgraded' });
});

test("Inactive (config_mismatch): a node's encryption differs from the gateway's mode, not the majority's", () => {
  const a = node('node-a');
  const b = node('node-b');
  const c = node('node-c', { tls: true });
  // Mode none: the TLS-only node is Inactive, however many nodes are like it.
  let s = statuses([a, b, c], a);
  assert.deepEqual(of(s, c), {
    status: 'Inactive',
    reason: 'config_mismatch',
    hint: "node-c serves node-to-node traffic in TLS only; the gateway's encryption mode is none: restart it without --tls-cert, --tls-key and --tls-ca, or set the mode with `ferry gateway update GW --encryption tls`",
  });
  assert.equal(of(s, a).status, 'Online');
  // Mode tls: now the two plain nodes are the odd ones, though they are the majority.
  s = statuses([a, b, c], a, NOW, 'tls');
  assert.equal(of(s, c).status, 'Online');
  assert.equal(of(s, a).reason, 'config_mismatch');
  assert.match(
    of(s, b).hint,
    /^node-b serves node-to-node traffic in plain HTTP; the gateway's encryption mode is tls: /,
  );
  // A node that heard of tls and has no certificate yet says so; one that cannot switch says why.
  const waiting = node('node-w', { transport: { mode: 'tls', sendsTls: false, acceptsPlain: true } });
  const stuck = node('node-s', {
    transport: {
      mode: 'tls',
      sendsTls: false,
      acceptsPlain: true,
      problem: 'cannot read --tls-cert /x.pem: no such file',
    },
  });
  s = statuses([c, waiting, stuck], c, NOW, 'tls');
  assert.match(
    of(s, waiting).hint,
    /plain HTTP; .*it switches once it has its certificate from the gateway's CA/,
  );
  assert.equal(of(s, stuck).status, 'Inactive');
  assert.match(
    of(s, stuck).hint,
    /^node-s cannot switch to TLS: cannot read --tls-cert \/x\.pem: no such file; /,
  );
});

test('encryption during a live change: a node that has not heard of the new mode, or is halfway, is not Inactive', () => {
  const plainHeard = (name: string) =>
    node(name, { transport: { mode: 'none', sendsTls: false, acceptsPlain: true } });
  const a = plainHeard('node-a');
  const b = plainHeard('node-b');
  // The mode was just set to tls: both last reported under none; neither is Inactive for it.
  let s = statuses([a, b], a, NOW, 'tls');
  assert.equal(of(s, a).status, 'Online');
  assert.equal(of(s, b).status, 'Online');
  assert.equal(encryptionSettled([a, b], 'tls', NOW, O), false);
  // a heard it and sends TLS (still takes plain): Online under either mode; not settled until b does.
  const aHalf = { ...a, transport: { mode: 'tls' as const, sendsTls: true, acceptsPlain: true } };
  s = statuses([aHalf, b], aHalf, NOW, 'tls');
  assert.equal(of(s, aHalf).status, 'Online');
  assert.equal(encryptionSettled([aHalf, b], 'tls', NOW, O), false);
  const bHalf = { ...b, transport: { mode: 'tls' as const, sendsTls: true, acceptsPlain: true } };
  assert.equal(encryptionSettled([aHalf, bHalf], 'tls', NOW, O), true);
  // A node that cannot switch does not hold the others halfway; an Offline one neither.
  const stuck = node('node-s', {
    transport: { mode: 'tls', sendsTls: false, acceptsPlain: true, problem: 'no file' },
  });
  const gone = node('node-g', { lastSeenAt: NOW - 60_000 });
  assert.equal(encryptionSettled([aHalf, bHalf, stuck, gone], 'tls', NOW, O), true);
  // Back to none: settled once every live node takes plain again.
  const aTls = { ...a, tls: true, transport: { mode: 'tls' as const, sendsTls: true, acceptsPlain: false } };
  assert.equal(encryptionSettled([aTls, bHalf], 'none', NOW, O), false);
  assert.equal(encryptionSettled([aHalf, bHalf], 'none', NOW, O), true);
});

test('Inactive (isolated): a node that reaches no other node, while others are live', () => {
  const a = node('node-a');
  const b = node('node-b');
  const c = node('node-c');
  c.reach = [fail(a, 'connection refused'), fail(b, 'timed out')];
  const s = of(statuses([a, b, c], a), c);
  assert.deepEqual(s, {
    status: 'Inactive',
    reason: 'isolated',
    hint: 'node-c cannot connect to any other node (node-a: connection refused; node-b: timed out)',
  });
  // Alone in the gateway, failing probes of a departed peer do not make a node isolated.
  const gone = node('node-x', { lastSeenAt: NOW - 60_000 });
  const alone = node('node-y', { reach: [fail(gone, 'connection refused')] });
  assert.equal(of(statuses([gone, alone], alone), alone).status, 'Online');
});

test('Limited (version_mismatch): a node whose version differs from the gateway version', () => {
  const a = node('node-a');
  const b = node('node-b');
  const newer = node('node-c', { version: '1.1.0' });
  const s = statuses([a, b, newer], a);
  assert.deepEqual(of(s, newer), {
    status: 'Limited',
    reason: 'version_mismatch',
    hint: 'node-c runs 1.1.0; the gateway version is 1.0.0: update it to 1.0.0',
  });
  assert.equal(of(s, a).status, 'Online');
});

test('Limited (dispatcher_unreachable): a worker that cannot reach the dispatcher but reaches a peer', () => {
  const a = node('node-a');
  const b = node('node-b');
  const c = node('node-c');
  b.reach = [fail(a, 'connection refused'), ok(c)];
  const s = of(statuses([a, b, c], a), b);
  assert.deepEqual(s, {
    status: 'Limited',
    reason: 'dispatcher_unreachable',
    hint: `node-b cannot reach dispatcher node-a at ${a.peerAddress}: connection refused`,
  });
});

test('Limited (unreachable_from_dispatcher): the dispatcher cannot reach the node', () => {
  const a = node('node-a');
  const b = node('node-b');
  const c = node('node-c');
  a.reach = [ok(b), fail(c, 'timed out')];
  const s = statuses([a, b, c], a);
  assert.deepEqual(of(s, c), {
    status: 'Limited',
    reason: 'unreachable_from_dispatcher',
    hint: `dispatcher node-a cannot reach node-c at ${c.peerAddress}: timed out`,
  });
  assert.equal(of(s, b).status, 'Online');
  assert.equal(of(s, a).status, 'Online', 'the dispatcher itself is not judged by its own probes');
  // An Offline dispatcher's last probes are stale: they no longer limit anyone.
  const later = NOW + 6000;
  const fresh = (n: NodeFacts): NodeFacts => ({ ...n, lastSeenAt: later - 100 });
  const after = statuses([a, fresh(b), fresh(c)], a, later);
  assert.equal(of(after, a).status, 'Offline');
  assert.equal(of(after, c).status, 'Online');
});

test('gateway status: Needs Registration, Online, Offline, Limited, each with a hint naming nodes', () => {
  assert.deepEqual(computeGatewayStatus([], new Map()), {
    status: 'Needs Registration',
    reason: 'no_nodes',
    hint: 'no node is registered yet: run `ferry node --key KEY` on a machine',
  });

  const a = node('node-a');
  const b = node('node-b');
  const c = node('node-c');
  const online = computeGatewayStatus([a, b, c], statuses([a, b, c], a));
  assert.deepEqual(online, { status: 'Online', reason: 'ok', hint: 'all 3 nodes are Online' });

  const d = node('node-d');
  const bSilent = { ...b, lastSeenAt: NOW - 9000 };
  const cNewer = { ...c, version: '2.0.0' };
  const some = computeGatewayStatus([a, bSilent, cNewer, d], statuses([a, bSilent, cNewer, d], a));
  assert.deepEqual(some, {
    status: 'Limited',
    reason: 'some_nodes_unhealthy',
    hint: 'not all nodes are healthy: node-b Offline, node-c Limited',
  });

  // A node Offline for long: the hint says how to remove it, naming the gateway.
  const bGone = { ...b, lastSeenAt: NOW - 25 * 60_000 };
  const long = computeGatewayStatus([a, bGone], statuses([a, bGone], a), { now: NOW, gateway: 'sales' });
  assert.equal(
    long.hint,
    'not all nodes are healthy: node-b Offline; node-b has been Offline for 25 min: if it is gone for good, remove it with `ferry node delete sales node-b`',
  );
  const bRecent = { ...b, lastSeenAt: NOW - 9000 };
  assert.equal(
    computeGatewayStatus([a, bRecent], statuses([a, bRecent], a), { now: NOW, gateway: 'sales' }).hint,
    'not all nodes are healthy: node-b Offline',
    'a node Offline for seconds is not called gone',
  );

  const dead = [a, b, c].map((n) => ({ ...n, lastSeenAt: NOW - 9000 }));
  assert.deepEqual(computeGatewayStatus(dead, statuses(dead, a)), {
    status: 'Offline',
    reason: 'no_node_online',
    hint: 'no node is Online',
  });
  // No node Online is Offline even when the nodes are only Limited or Inactive.
  const notOnline = new Map<string, StatusView<NodeStatus>>([
    [a.id, { status: 'Limited', reason: 'version_mismatch', hint: '' }],
    [b.id, { status: 'Inactive', reason: 'config_mismatch', hint: '' }],
  ]);
  assert.equal(computeGatewayStatus([a, b], notOnline).status, 'Offline');
});

test('gateway version: the version most nodes run; a tie goes to the higher version', () => {
  assert.equal(gatewayVersion([]), null);
  assert.equal(gatewayVersion([{ version: '1.2.0' }]), '1.2.0');
  assert.equal(
    gatewayVersion([{ version: '1.0.0' }, { version: '1.1.0' }, { version: '1.0.0' }]),
    '1.0.0',
    'majority, even if lower',
  );
  assert.equal(gatewayVersion([{ version: '1.0.0' }, { version: '1.1.0' }]), '1.1.0');
  assert.equal(
    gatewayVersion([{ version: '1.1.0' }, { version: '1.0.0' }]),
    '1.1.0',
    'order does not matter',
  );
  // Compared as numbers, not text: 1.10 is newer than 1.9.
  assert.equal(gatewayVersion([{ version: '1.9.0' }, { version: '1.10.0' }]), '1.10.0');
  assert.equal(
    gatewayVersion([{ version: '2.0.0' }, { version: '1.0.0' }, { version: '1.0.0' }, { version: '2.0.0' }]),
    '2.0.0',
  );
  // Semantic version precedence: a pre-release is lower than its release.
  assert.equal(gatewayVersion([{ version: '1.0.0' }, { version: '1.0.0-rc.1' }]), '1.0.0');
});

test('gateway version: only nodes that are up count; a registration that never heartbeats does not', () => {
  const a = node('node-a');
  const b = node('node-b', { reach: [ok(a)] });
  // Registered just now claiming 99.0.0, never heartbeated: it counts for nothing, even in a tie.
  const fake = node('node-fake', { version: '99.0.0', lastSeenAt: NOW, registeredOnly: true });
  assert.deepEqual(
    versionVoters([a, fake], NOW, O).map((n) => n.name),
    ['node-a'],
  );
  const probed = { ...a, reach: [fail(fake, 'connection refused')] };
  let s = statuses([probed, fake], a);
  assert.equal(of(s, a).status, 'Online', 'the real node is neither Limited nor isolated by the fake one');
  assert.deepEqual(of(s, fake), {
    status: 'Offline',
    reason: 'no_heartbeat',
    hint: 'node-fake registered and has not sent a heartbeat yet',
  });
  // Nor do fakes hold the encryption mode halfway.
  const tlsFakes = [1, 2, 3].map((i) =>
    node(`tls-${i}`, { tls: true, lastSeenAt: NOW, registeredOnly: true }),
  );
  s = statuses([a, ...tlsFakes], a);
  assert.equal(of(s, a).status, 'Online');
  assert.equal(encryptionSettled([a, ...tlsFakes], 'none', NOW, O), true);

  // Once Offline, a node that did heartbeat no longer counts either, even as the majority.
  const gone1 = node('gone-1', { version: '99.0.0', lastSeenAt: NOW - 9000 });
  const gone2 = node('gone-2', { version: '99.0.0', lastSeenAt: NOW - 9000 });
  const left = node('left', { version: '99.0.0', leftAt: NOW - 100 });
  const upgrading = node('upgrading', { version: '99.0.0', upgrading: true });
  s = statuses([a, b, gone1, gone2, left, upgrading], a);
  assert.equal(of(s, a).status, 'Online');
  assert.equal(of(s, b).status, 'Online');
  assert.equal(computeGatewayStatus([a, b], s).status, 'Online');
  assert.deepEqual(
    versionVoters([a, b, gone1, gone2, left, upgrading], NOW, O).map((n) => n.name),
    ['node-a', 'node-b'],
  );

  // Before any node has heartbeated, the nodes just registered count (the gateway's first node).
  const first = node('first', { lastSeenAt: NOW, registeredOnly: true });
  assert.deepEqual(
    versionVoters([first], NOW, O).map((n) => n.name),
    ['first'],
  );
  assert.equal(gatewayVersion(versionVoters([first, gone1], NOW, O)), '1.0.0');
  // No node up: no gateway version, so nobody is Limited for their version.
  assert.equal(gatewayVersion(versionVoters([gone1, left], NOW, O)), null);
});

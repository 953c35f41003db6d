/**
 * The dispatcher election with a fake clock: `now` is an explicit number, node rows are built by hand
 * and judged by the same buildGatewayState the service uses. One test writes the outcome through
 * applyElection to a real (temporary) SQLite store to see the epoch move.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { decideDispatcher, type ElectionOptions } from './election.ts';
import { buildGatewayState, type GatewayState } from './gateway-state.ts';
import type { SchedulerTimings } from './timings.ts';
import type { GatewaysTable, NodesTable } from '../store/schema.ts';
import type { PeerReachT } from '../../protocol/agent.ts';
import { openStore } from '../store/database.ts';
import { applyElection } from '../store/queries/apply-election.ts';
import { FerryError } from '../../common/errors.ts';

const NOW = 1_800_000_000_000;
const HB = 1000;
const O: ElectionOptions = { heartbeatIntervalMs: HB, dispatcherLeaseMs: 5000 };
const OFFLINE = { offlineAfterMs: 5000 };

function row(seq: number, over: Partial<NodesTable> = {}): NodesTable {
  const name = over.name ?? `node-${seq}`;
  return {
    id: `id-${name}`,
    gateway_id: 'gw-1',
    name,
    seq,
    version: '1.0.0',
    peer_host: '127.0.0.1',
    peer_port: 8060 + seq,
    tls: 0,
    cores: 2,
    memory_bytes: 4 * 1024 ** 3,
    token_hash: `hash-${name}`,
    registered_at: NOW - 60_000 + seq,
    last_seen_at: NOW - 200,
    metrics_json: '{"cpuPercent":1}', // it has heartbeated (registration stores '{}')
    running: 0,
    limit_default: 4,
    limit_override: null,
    draining: 0,
    drain_requested: 0,
    upgrading: 0,
    reach_json: '[]',
    left_at: null,
    sign_public_key: null,
    seal_public_key: null,
    credentials_json: '{"gatewayKey":null,"versions":{}}',
    tls_report_json: null,
    tls_public_key: null,
    tls_cert: null,
    tls_cert_host: null,
    tls_cert_renew_at: null,
    ...over,
  };
}

function gateway(dispatcher: NodesTable | null, over: Partial<GatewaysTable> = {}): GatewaysTable {
  return {
    id: 'gw-1',
    name: 'gw',
    key1: 'k1',
    key2: 'k2',
    peer_secret: 's',
    max_nodes: null,
    created_at: NOW - 120_000,
    dispatcher_node_id: dispatcher?.id ?? null,
    epoch: dispatcher ? 3 : 0,
    lease_until: dispatcher ? NOW + 3000 : 0,
    dispatcher_reason: '',
    dispatcher_changed_at: NOW - 30_000,
    credential_key: null,
    credential_resync: 0,
    encryption: 'none',
    ca_cert: null,
    ca_key_sealed: null,
    ...over,
  };
}

function reach(...r: [NodesTable, boolean, string?][]): string {
  const out: PeerReachT[] = r.map(([n, ok, error]) =>
    ok || error === undefined ? { nodeId: n.id, ok } : { nodeId: n.id, ok, error },
  );
  return JSON.stringify(out);
}

function state(gw: GatewaysTable, rows: NodesTable[], now = NOW): GatewayState {
  return buildGatewayState(gw, rows, now, OFFLINE);
}

function decide(s: GatewayState, active: Record<string, number> = {}, now = NOW) {
  return decideDispatcher(s, new Map(Object.entries(active)), now, O);
}

test('no dispatcher: the node with the most free capacity wins, ties by registration order', () => {
  const a = row(1); // limit 4, 3 running -> 1 free
  const b = row(2); // limit 4, 0 running -> 4 free
  const c = row(3, { limit_override: 8 }); // limit 8, 4 running -> 4 free
  const d = row(4, { limit_override: 6 }); // limit 6, 3 running -> 3 free
  const s = state(gateway(null), [a, b, c, d]);
  const got = decide(s, { [a.id]: 3, [c.id]: 4, [d.id]: 3 });
  assert.deepEqual(got, { nodeId: b.id, reason: 'no dispatcher' });
  // More room on c: it wins over the earlier registered b.
  assert.equal(decide(s, { [a.id]: 3, [b.id]: 1, [c.id]: 4, [d.id]: 3 })?.nodeId, c.id);
  // Everyone equal: the first registered.
  assert.equal(decide(state(gateway(null), [row(1), row(2), row(3)]))?.nodeId, 'id-node-1');
  // No node at all: nothing to decide.
  assert.equal(decide(state(gateway(null), [])), undefined);
});

test('a valid lease held by a healthy dispatcher is kept', () => {
  const a = row(1);
  const b = row(2);
  assert.equal(decide(state(gateway(a), [a, b]), { [a.id]: 4 }), undefined);
});

test('lease expired: the role is open again and the holder may win it (under a new epoch)', () => {
  const a = row(1, { last_seen_at: NOW - 3200 }); // silent, but not yet Offline
  const b = row(2, { reach_json: '[]' });
  const gw = gateway(a, { lease_until: NOW - 1 });
  const again = decide(state(gw, [a, b]));
  assert.ok(again);
  assert.equal(again.nodeId, a.id, 'the holder is still the best node');
  assert.match(again.reason, /node-1 silent 3\.2 s; lease expired/);
  // With less room than another node, the holder loses it.
  const moved = decide(state(gw, [a, b]), { [a.id]: 2 });
  assert.equal(moved?.nodeId, b.id);
});

test('lease expired: applyElection writes a new epoch even when the holder wins again', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'ferry-election-'));
  const store = await openStore({ dataDir: dir });
  t.after(async () => {
    await store.close();
    rmSync(dir, { recursive: true, force: true });
  });
  const a = row(1, { last_seen_at: NOW - 3200 });
  const b = row(2);
  const gw = gateway(a, { lease_until: NOW - 1, epoch: 7 });
  await store.db.insertInto('gateways').values(gw).execute();
  await store.db.insertInto('nodes').values([a, b]).execute();
  const timings: SchedulerTimings = {
    ...O,
    ...OFFLINE,
    attemptLeaseMs: 10_000,
    electionsEnabled: () => true,
  };

  const read = () => store.db.selectFrom('gateways').selectAll().executeTakeFirstOrThrow();
  const elect = async (now: number) =>
    store.db.transaction().execute(async (tx) => {
      const g = await tx.selectFrom('gateways').selectAll().executeTakeFirstOrThrow();
      const rows = await tx.selectFrom('nodes').selectAll().orderBy('seq').execute();
      return applyElection(tx, buildGatewayState(g, rows, now, OFFLINE), now, timings);
    });

  assert.equal(await elect(NOW), true);
  const after = await read();
  assert.equal(after.dispatcher_node_id, a.id);
  assert.equal(after.epoch, 8);
  assert.equal(after.lease_until, NOW + O.dispatcherLeaseMs);
  assert.match(after.dispatcher_reason, /lease expired/);
  // The renewed lease holds: a second pass changes nothing.
  assert.equal(await elect(NOW + 100), false);
  assert.equal((await read()).epoch, 8);
  const events = await store.db.selectFrom('events').selectAll().execute();
  assert.ok(
    events.some((e) => e.kind === 'dispatcher_changed' && /node-1 -> node-1 \(epoch 8\)/.test(e.message)),
  );
});

test('a draining holder hands the role over; it keeps it when nobody else can take it', () => {
  const a = row(1, { drain_requested: 1 });
  const b = row(2);
  const got = decide(state(gateway(a), [a, b]));
  assert.deepEqual(got, { nodeId: b.id, reason: 'node-1 is draining' });
  // Shutting down (draining reported by the node itself) counts the same.
  const a2 = row(1, { draining: 1 });
  assert.equal(decide(state(gateway(a2), [a2, b]))?.nodeId, b.id);
  // Alone: a draining dispatcher with a valid lease stays, rather than leave the gateway without one.
  assert.equal(decide(state(gateway(a), [a])), undefined);
});

test('a holder that left or went Offline is replaced at once, lease or not', () => {
  const left = row(1, { left_at: NOW - 100, last_seen_at: NOW - 100 });
  const b = row(2);
  assert.deepEqual(decide(state(gateway(left), [left, b])), { nodeId: b.id, reason: 'node-1 shut down' });
  const silent = row(1, { last_seen_at: NOW - 6000 });
  const off = decide(state(gateway(silent), [silent, b]));
  assert.equal(off?.nodeId, b.id);
  assert.match(off?.reason ?? '', /node-1 is Offline \(no heartbeat from node-1 for 6\.0 s\)/);
  // Nobody can take it: the gateway is left without a dispatcher.
  assert.deepEqual(decide(state(gateway(left), [left])), {
    nodeId: null,
    reason: 'node-1 shut down; no eligible node',
  });
});

test('early expiry: holder silent for 2 heartbeats and every fresher peer report says unreachable', () => {
  const a = row(1, { last_seen_at: NOW - 2 * HB }); // lease still valid until NOW + 3000
  const b = row(2, { last_seen_at: NOW - 100 });
  const c = row(3, { last_seen_at: NOW - 50 });
  // Workers that cannot reach the dispatcher also probe others (peer-prober), so they are not isolated.
  b.reach_json = reach([a, false, 'connection refused'], [c, true]);
  c.reach_json = reach([a, false, 'connection refused'], [b, true]);
  const s = state(gateway(a), [a, b, c]);
  assert.equal(s.nodes[1]?.status.reason, 'dispatcher_unreachable');
  const got = decide(s, { [b.id]: 1 });
  assert.ok(got);
  assert.equal(got.nodeId, c.id, 'the holder may not win it back; the freest peer does');
  assert.equal(got.reason, 'node-1 silent 2.0 s and unreachable from 2 of 2 peers (connection refused)');

  // Silent for less than two heartbeats: the same reports end nothing early.
  const recent = row(1, { last_seen_at: NOW - 2 * HB + 1 });
  assert.equal(decide(state(gateway(recent), [recent, b, c])), undefined);

  // Reports older than the holder's last heartbeat are not evidence.
  const stale = row(3, { last_seen_at: NOW - 2500, reach_json: c.reach_json });
  const s2 = state(gateway(a), [a, b, stale]);
  assert.equal(decide(s2)?.nodeId, b.id, 'b alone is fresher, and it says unreachable');
  const bStale = row(2, { last_seen_at: NOW - 2500, reach_json: b.reach_json });
  assert.equal(decide(state(gateway(a), [a, bStale, stale])), undefined, 'no fresher report at all');
});

test('no early expiry while one peer still reaches the holder', () => {
  const a = row(1, { last_seen_at: NOW - 2500 });
  const b = row(2);
  const c = row(3);
  b.reach_json = reach([a, false, 'connection refused'], [c, true]);
  c.reach_json = reach([a, true]);
  assert.equal(decide(state(gateway(a), [a, b, c])), undefined);
});

test('nodes Limited only because of the dispatcher are candidates', () => {
  // The dispatcher left; both workers' last reports say they could not reach it.
  const a = row(1, { left_at: NOW - 100, last_seen_at: NOW - 100 });
  const b = row(2);
  const c = row(3);
  b.reach_json = reach([a, false, 'connection refused'], [c, true]);
  c.reach_json = reach([a, false, 'connection refused'], [b, true]);
  const s = state(gateway(a), [a, b, c]);
  assert.equal(s.nodes[1]?.status.status, 'Limited');
  assert.equal(s.nodes[1]?.eligible, false, 'no tasks for it while Limited');
  assert.deepEqual(decide(s, { [b.id]: 2 }), { nodeId: c.id, reason: 'node-1 shut down' });

  // ... and so is one the dispatcher cannot reach: a draining dispatcher hands the role to it.
  const d = row(1, { drain_requested: 1 });
  const e = row(2);
  d.reach_json = reach([e, false, 'timed out']);
  const s2 = state(gateway(d), [d, e]);
  assert.equal(s2.nodes[1]?.status.reason, 'unreachable_from_dispatcher');
  assert.deepEqual(decide(s2), { nodeId: e.id, reason: 'node-1 is draining' });
});

test('a dispatcher behind on credentials keeps the role (it pulls them), and such a node is a candidate', () => {
  // A credential set straight on worker b: the dispatcher a is behind, Limited, and stays.
  const creds = (versions: Record<string, number>): string => JSON.stringify({ gatewayKey: null, versions });
  const a = row(1, { credentials_json: creds({}) });
  const b = row(2, { credentials_json: creds({ pg: 2 }) });
  const s = state(gateway(a), [a, b]);
  assert.equal(s.nodes[0]?.status.reason, 'credentials_out_of_sync');
  assert.match(s.nodes[0]?.status.hint ?? '', /node-1 pg: holds version none, node-2 holds 2/);
  assert.equal(decide(s), undefined, 'no election for it');
  assert.equal(s.nodes[0]?.eligible, true, 'it still takes tasks that need no credential it lacks');
  // The dispatcher left: a node behind on credentials may take the role (and then catch up).
  const c = row(1, { left_at: NOW - 100, last_seen_at: NOW - 100 });
  const d = row(2, { credentials_json: creds({}) });
  const e = row(3, { credentials_json: creds({ pg: 2 }), limit_override: 1 });
  const s2 = state(gateway(c), [c, d, e]);
  assert.equal(s2.nodes[1]?.status.reason, 'credentials_out_of_sync');
  assert.equal(decide(s2, { [e.id]: 1 })?.nodeId, d.id);
});

test('draining nodes, nodes on another version and otherwise unhealthy nodes are not candidates', () => {
  const draining = row(1, { drain_requested: 1 });
  const other = row(2, { version: '2.0.0' });
  const upgrading = row(3, { upgrading: 1 });
  const inactive = row(4, { tls: 1 });
  const plain = row(5);
  const plain2 = row(6);
  const s = state(gateway(null), [draining, other, upgrading, inactive, plain, plain2]);
  assert.equal(s.version, '1.0.0');
  // plain2 is busiest, plain is busier still: the unfit ones have all the room and still lose.
  const got = decide(s, { [plain.id]: 3, [plain2.id]: 2 });
  assert.equal(got?.nodeId, plain2.id);
  assert.equal(decide(s, { [plain.id]: 3, [plain2.id]: 3 })?.nodeId, plain.id, 'tie: registration order');

  // Only unfit nodes: nobody is chosen, and a lapsed holder on another version loses the role.
  const none = state(gateway(null), [row(1, { drain_requested: 1 }), row(2, { upgrading: 1 })]);
  assert.equal(decide(none), undefined);
  const oldHolder = row(1, { version: '0.9.0', last_seen_at: NOW - 3000 });
  const lapsed = state(gateway(oldHolder, { lease_until: NOW - 1 }), [oldHolder, row(2), row(3)]);
  assert.equal(lapsed.version, '1.0.0');
  assert.equal(decide(lapsed)?.nodeId, 'id-node-2', 'the holder on another version may not win it back');
});

test('a node row whose stored reach or metrics are malformed is an error naming the row, not an empty value', () => {
  const a = row(1);
  const b = row(2, { reach_json: '[{"nodeId":' });
  assert.throws(
    () => buildGatewayState(gateway(a), [a, b], NOW, OFFLINE),
    (err: unknown) =>
      err instanceof FerryError &&
      err.code === 'internal' &&
      err.message === `the store holds a malformed nodes.reach_json in row ${b.id}: it is not JSON`,
  );
  const c = row(3, { metrics_json: '{"cpuPercent":-1}' });
  assert.throws(
    () => buildGatewayState(gateway(a), [a, c], NOW, OFFLINE),
    /malformed nodes\.metrics_json in row id-node-3: cpuPercent: /,
  );
});

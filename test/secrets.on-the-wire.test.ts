/**
 * Secret values never cross a hop readable: with recording TCP relays between the nodes and the
 * service (plain HTTP) and in front of each node's node-to-node port (plain HTTP), a PostgreSQL to
 * PostgreSQL copy whose two linked services hold marker passwords succeeds (plan, copies dispatched
 * to the other node, finalize), and no recorded byte holds either marker, as it is or in base64,
 * base64url or hex. The relays did carry the claims and dispatches, with their sealed secrets.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import pg from 'pg';
import { eventually, startNode, startService, tempDir, type NodeHandle } from './helpers/cluster.ts';
import { runPipeline, waitRun } from './helpers/scenario.ts';
import { freePort, recordingRelay, type RecordingRelay } from './helpers/recording-relay.ts';

const PG = { host: '127.0.0.1', port: 5432, user: 'postgres', database: 'test' };

/** Every way the marker could be written on the wire: as is, and base64/base64url/hex at any alignment. */
function encodings(marker: string): string[] {
  const raw = Buffer.from(marker);
  const out = [marker, raw.toString('hex')];
  for (let shift = 0; shift < 3; shift++) {
    const b64 = Buffer.concat([Buffer.alloc(shift), raw]).toString('base64');
    // Drop the characters that also depend on the bytes around the marker.
    const core = b64.slice(shift === 0 ? 0 : shift + 1, -3);
    out.push(core, core.replaceAll('+', '-').replaceAll('/', '_'));
  }
  return out;
}

function assertAbsent(where: string, bytes: Buffer, markers: string[]): void {
  const text = bytes.toString('latin1');
  for (const marker of markers) {
    for (const form of encodings(marker)) {
      assert.equal(text.includes(form), false, `${where} carried a secret (${form}) in clear`);
    }
  }
}

test('secrets are sealed end to end: no plain-HTTP hop carries them readable', async (t) => {
  const schema = `wire_${process.pid}_${Date.now()}`;
  const db = new pg.Client(PG);
  await db.connect();
  t.after(async () => {
    await db.query(`DROP SCHEMA IF EXISTS ${schema} CASCADE`);
    await db.end();
  });
  await db.query(`CREATE SCHEMA ${schema}`);
  await db.query(`CREATE TABLE ${schema}.src (id bigint, name text)`);
  await db.query(`INSERT INTO ${schema}.src SELECT i, 'row ' || i FROM generate_series(1, 3000) i`);
  await db.query(`CREATE TABLE ${schema}.dst (id bigint, name text)`);

  const svc = await startService(t);
  // Nodes -> service through a relay.
  const toService = await recordingRelay(
    t,
    { host: '127.0.0.1', port: 0 },
    { host: '127.0.0.1', port: svc.port },
  );
  const serviceViaRelay = { url: `http://127.0.0.1:${toService.port}` };
  const gw = await svc.api.call('POST', '/api/v1/gateways', { name: 'gw' });

  // Each node listens on 127.0.0.1:P and advertises 127.0.0.(2|3):P, where a relay listens: whichever
  // node dispatches, its dispatches to the other go through a relay.
  const peerRelays: RecordingRelay[] = [];
  const nodes: NodeHandle[] = [];
  for (const [i, limit] of [
    [1, 1],
    [2, 4],
  ] as const) {
    const port = await freePort();
    const advertise = `127.0.0.${i + 1}`;
    peerRelays.push(await recordingRelay(t, { host: advertise, port }, { host: '127.0.0.1', port }));
    nodes.push(
      await startNode(t, serviceViaRelay, {
        name: `node-${i}`,
        key: gw.key1,
        dataDir: tempDir(t, `ferry-node-${i}-`),
        extraArgs: ['--port', String(port), '--advertise', advertise, '--limit', String(limit)],
      }),
    );
  }
  const dispatcher = await eventually('both nodes Online, one the dispatcher', async () => {
    const res = await svc.api.call('GET', '/api/v1/gateways/gw/nodes');
    const ready = res.nodes.length === 2 && res.nodes.every((n: { status: string }) => n.status === 'Online');
    return ready && res.gateway.dispatcher ? (res.gateway.dispatcher as string) : undefined;
  });
  const worker = dispatcher === 'node-1' ? 'node-2' : 'node-1';
  // The dispatcher learns its peers from its heartbeat replies: wait for one sent after both were
  // Online, or its first claims (which hold their offer for a second) would offer only itself.
  const bothOnlineAt = Date.now();
  await eventually('the dispatcher to hear of the worker', async () => {
    const res = await svc.api.call('GET', '/api/v1/gateways/gw/nodes');
    const d = res.nodes.find((n: { name: string }) => n.name === dispatcher);
    return Date.parse(d.lastSeenAt) > bothOnlineAt + 100 || undefined;
  });

  const markers = [
    `src-pass-${randomBytes(12).toString('hex')}`,
    `dst-pass-${randomBytes(12).toString('hex')}`,
  ];
  for (const [name, password] of [
    ['pg-src', markers[0]],
    ['pg-dst', markers[1]],
  ] as const) {
    // The shared PostgreSQL trusts local connections: any password works, and each is a marker.
    await svc.api.call('POST', '/api/v1/linked-services', {
      name,
      type: 'postgres',
      gateway: 'gw',
      properties: { ...PG, password },
    });
  }
  const g = { svc, gateway: 'gw', key: gw.key1, nodes, root: '' };
  const runId = await runPipeline(g, {
    name: 'wire',
    activities: [
      {
        name: 'rows',
        source: { linkedService: 'pg-src', table: `${schema}.src`, partitionColumn: 'id', partitions: 6 },
        sink: { linkedService: 'pg-dst', table: `${schema}.dst`, mode: 'overwrite' },
      },
    ],
  });
  const run = await waitRun(g, runId);
  assert.equal(run.status, 'succeeded', JSON.stringify(run.error));
  const { rows } = await db.query(
    `SELECT count(*)::int AS n, count(DISTINCT id)::int AS ids FROM ${schema}.dst`,
  );
  assert.deepEqual(rows[0], { n: 3000, ids: 3000 });
  const kinds = run.tasks.map((tk: { kind: string }) => tk.kind);
  assert.ok(kinds.includes('plan') && kinds.includes('copy') && kinds.includes('finalize'), kinds.join());
  const onWorker = run.tasks.filter((tk: { node: string }) => tk.node === worker);
  assert.ok(
    onWorker.length > 0,
    `some tasks ran on ${worker}, dispatched through its relay (they ran on ${run.tasks.map((tk: { node: string }) => tk.node).join(', ')})`,
  );

  // The relays saw the traffic that carries secrets: the claims and the dispatches to the worker ...
  const serviceBytes = toService.recorded().toString('latin1');
  assert.match(serviceBytes, /POST \/api\/v1\/agent\/claim/);
  const workerRelay = peerRelays[worker === 'node-1' ? 0 : 1];
  assert.ok(workerRelay);
  const dispatchBytes = workerRelay.recorded().toString('latin1');
  assert.match(dispatchBytes, /POST \/v1\/dispatch/);

  // ... and none of them carried a secret readable.
  assertAbsent('the node -> service hop', toService.recorded(), markers);
  for (const [i, r] of peerRelays.entries()) assertAbsent(`the hop to node-${i + 1}`, r.recorded(), markers);
  // ... where they went sealed.
  assert.match(serviceBytes, /"sealedSecrets":"x25519-aes256gcm\./);
  assert.match(dispatchBytes, /"sealedSecrets":"x25519-aes256gcm\./);
  // Nor did any log.
  for (const p of [svc.proc, ...nodes.map((n) => n.proc)])
    assertAbsent(`${p.name}'s log`, Buffer.from(p.output), markers);
  // A node's private keys never leave it: only their public halves went to the service.
  const everything = Buffer.concat([toService.recorded(), ...peerRelays.map((r) => r.recorded())]).toString(
    'latin1',
  );
  for (const n of nodes) {
    const keys = JSON.parse(readFileSync(join(n.dataDir, 'node.json'), 'utf8')).keys;
    assert.ok(everything.includes(keys.signPublicKey), `${n.name}'s public key went to the service`);
    for (const k of [keys.signPrivateKey, keys.sealPrivateKey])
      assert.equal(everything.includes(k.slice(-40)), false, `${n.name}'s private key on the wire`);
  }
});

/**
 * A claim never hands out a clear secret: each attempt's secret values are sealed to the node that
 * will run it, for that attempt and endpoint only, and a task with secrets waits for a node whose
 * seal key the service knows. On the embedded store, fake clock.
 */
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { randomBytes } from 'node:crypto';
import { openStore } from '../database.ts';
import { createGateway } from './gateways.ts';
import { registerNode } from './register-node.ts';
import { recordHeartbeat } from './record-heartbeat.ts';
import { claimTasks } from './claim-tasks.ts';
import { startRun } from './start-run.ts';
import { applyPipeline } from './pipelines.ts';
import { upsertLinkedService } from './linked-services.ts';
import { endpointResolver, splitSecrets } from '../../linked-service-secrets.ts';
import { generateNodeKeys, type NodeKeys } from '../../../protocol/node-keys.ts';
import { openSecrets } from '../../../protocol/sealed-secrets.ts';
import type { HeartbeatRequestT } from '../../../protocol/agent.ts';
import type { SchedulerTimings } from '../../scheduler/timings.ts';

const T: SchedulerTimings = {
  heartbeatIntervalMs: 1000,
  dispatcherLeaseMs: 5000,
  offlineAfterMs: 5000,
  attemptLeaseMs: 10000,
  electionsEnabled: () => true,
};

const publicKeys = (k: NodeKeys) => ({ signPublicKey: k.signPublicKey, sealPublicKey: k.sealPublicKey });

function hb(keys: NodeKeys): HeartbeatRequestT {
  return {
    version: '1.0.0',
    metrics: {
      cpuPercent: 1,
      memoryAvailableBytes: 1,
      memoryTotalBytes: 2,
      networkInBytesPerSec: 0,
      networkOutBytesPerSec: 0,
    },
    running: [],
    defaultLimit: 2,
    draining: false,
    upgrading: false,
    tls: false,
    peerHost: '127.0.0.1',
    peerPort: 1,
    reach: [],
    ...publicKeys(keys),
  };
}

test('claims seal secrets to the assigned node, per attempt; no seal key, no task with secrets', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'ferry-claim-'));
  const store = await openStore({ dataDir: dir });
  after(async () => {
    await store.close();
    rmSync(dir, { recursive: true, force: true });
  });
  const db = store.db;
  const masterKey = randomBytes(32);
  const resolve = endpointResolver(masterKey);
  const marker = `marker-${randomBytes(8).toString('hex')}`;

  const gw = await createGateway(db, 'g', null, 1000);
  const k1 = generateNodeKeys();
  const k2 = generateNodeKeys();
  const join1 = { key: gw.key1, version: '1.0.0', peerHost: '127.0.0.1', peerPort: 1, tls: false };
  const machine = { cores: 2, memoryBytes: 1e9, defaultLimit: 2 };
  const r1 = await registerNode(db, { ...join1, ...machine, name: 'n1', ...publicKeys(k1) }, 2, 1000, T);
  const r2 = await registerNode(db, { ...join1, ...machine, name: 'n2', ...publicKeys(k2) }, 2, 1000, T);
  const row = (id: string) =>
    db.selectFrom('nodes').selectAll().where('id', '=', id).executeTakeFirstOrThrow();
  const { epoch } = await recordHeartbeat(db, await row(r1.nodeId), hb(k1), 2000, T);
  await recordHeartbeat(db, await row(r2.nodeId), hb(k2), 2000, T);
  // n2 as a node registered before nodes had keys, before its first heartbeat with them.
  await db.updateTable('nodes').set({ seal_public_key: null }).where('id', '=', r2.nodeId).execute();
  const n1 = await row(r1.nodeId);

  const pgProps = { host: '127.0.0.1', port: 5432, user: 'postgres', database: 'test', password: marker };
  const pgSplit = splitSecrets(masterKey, 'postgres', pgProps);
  await upsertLinkedService(
    db,
    {
      name: 'pg',
      type: 'postgres',
      gatewayId: gw.id,
      properties: pgSplit.plain,
      secretSealed: pgSplit.sealed,
    },
    2000,
  );
  await upsertLinkedService(
    db,
    { name: 'fs', type: 'filesystem', gatewayId: gw.id, properties: { root: '/x' }, secretSealed: null },
    2000,
  );
  await applyPipeline(
    db,
    {
      name: 'secret',
      activities: [{ name: 'a', source: { linkedService: 'pg' }, sink: { linkedService: 'fs' } }],
    },
    2000,
  );
  await applyPipeline(
    db,
    {
      name: 'plain',
      activities: [{ name: 'a', source: { linkedService: 'fs' }, sink: { linkedService: 'fs' } }],
    },
    2000,
  );
  await startRun(db, 'secret', 2100);
  await startRun(db, 'plain', 2200);

  // Only n2 (no seal key) has room: it gets the task without secrets; the one with secrets waits.
  const onlyN2 = await claimTasks(
    db,
    store.dialect,
    { node: n1, epoch, slots: [{ nodeId: r2.nodeId, free: 2 }] },
    2300,
    T,
    resolve,
  );
  assert.equal(onlyN2.length, 1);
  assert.equal(onlyN2[0]?.spec.source.linkedService, 'fs');
  assert.equal(onlyN2[0]?.nodeId, r2.nodeId);
  const waiting = await db
    .selectFrom('tasks')
    .innerJoin('runs', 'runs.id', 'tasks.run_id')
    .select(['tasks.status'])
    .where('runs.pipeline_name', '=', 'secret')
    .executeTakeFirstOrThrow();
  assert.equal(waiting.status, 'queued', 'the task with secrets stays queued');

  // n1 (its seal key known) gets it, sealed to n1's key, for this attempt and endpoint only.
  const [got] = await claimTasks(
    db,
    store.dialect,
    {
      node: n1,
      epoch,
      slots: [
        { nodeId: r2.nodeId, free: 1 },
        { nodeId: r1.nodeId, free: 1 },
      ],
    },
    2400,
    T,
    resolve,
  );
  assert.ok(got);
  assert.equal(got.nodeId, r1.nodeId);
  assert.equal(JSON.stringify(got).includes(marker), false, 'no clear secret in the claim');
  assert.equal(got.spec.source.properties['password'], undefined);
  assert.equal(got.spec.source.properties['user'], 'postgres', 'non-secret properties travel as they are');
  assert.equal(got.spec.sink.sealedSecrets, undefined, 'a linked service without secrets has no box');
  const box = got.spec.source.sealedSecrets;
  assert.ok(box);
  assert.deepEqual(openSecrets(k1.sealPrivateKey, box, got.attemptId, 'source'), { password: marker });
  const refused = (fn: () => unknown): void =>
    assert.throws(fn, (err: Error) => {
      assert.match(err.message, /cannot be opened on this node/);
      assert.equal(err.message.includes(marker), false);
      return true;
    });
  refused(() => openSecrets(k1.sealPrivateKey, box, 'att_other', 'source')); // replayed into another attempt
  refused(() => openSecrets(k1.sealPrivateKey, box, got.attemptId, 'sink')); // moved to the other endpoint
  refused(() => openSecrets(k2.sealPrivateKey, box, got.attemptId, 'source')); // another node
  const raw = Buffer.from(box.split('.')[1] ?? '', 'base64url');
  raw[raw.length - 1] = (raw[raw.length - 1] ?? 0) ^ 1;
  refused(() =>
    openSecrets(k1.sealPrivateKey, `x25519-aes256gcm.${raw.toString('base64url')}`, got.attemptId, 'source'),
  );
});

test('a task on gateway-held credentials goes only to a node holding the newest version, with no secret in it; none held: it fails saying what to do', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'ferry-claim-'));
  const store = await openStore({ dataDir: dir });
  after(async () => {
    await store.close();
    rmSync(dir, { recursive: true, force: true });
  });
  const db = store.db;
  const resolve = endpointResolver(randomBytes(32));
  const gw = await createGateway(db, 'g', null, 1000);
  const [k1, k2] = [generateNodeKeys(), generateNodeKeys()];
  const join1 = { key: gw.key1, version: '1.0.0', peerHost: '127.0.0.1', peerPort: 1, tls: false };
  const machine = { cores: 2, memoryBytes: 1e9, defaultLimit: 2 };
  const r1 = await registerNode(db, { ...join1, ...machine, name: 'n1', ...publicKeys(k1) }, 2, 1000, T);
  const r2 = await registerNode(db, { ...join1, ...machine, name: 'n2', ...publicKeys(k2) }, 2, 1000, T);
  const row = (id: string) =>
    db.selectFrom('nodes').selectAll().where('id', '=', id).executeTakeFirstOrThrow();
  const holding = (keys: NodeKeys, versions: Record<string, number>): HeartbeatRequestT => ({
    ...hb(keys),
    credentials: { gatewayKey: null, versions },
  });
  for (const [name, credentials] of [
    ['pg', 'gateway'],
    ['nobody', 'gateway'],
  ] as const)
    await upsertLinkedService(
      db,
      {
        name,
        type: 'postgres',
        gatewayId: gw.id,
        properties: { host: '127.0.0.1', port: 5432, user: 'u', database: 'd' },
        secretSealed: null,
        credentials,
      },
      2000,
    );
  await upsertLinkedService(
    db,
    { name: 'fs', type: 'filesystem', gatewayId: gw.id, properties: { root: '/x' }, secretSealed: null },
    2000,
  );
  for (const ls of ['pg', 'nobody'])
    await applyPipeline(
      db,
      { name: ls, activities: [{ name: 'a', source: { linkedService: ls }, sink: { linkedService: 'fs' } }] },
      2000,
    );
  // Set after the linked services exist (what held before them never counts: store migration 009).
  const { epoch } = await recordHeartbeat(db, await row(r1.nodeId), holding(k1, { pg: 2 }), 2000, T);
  await recordHeartbeat(db, await row(r2.nodeId), holding(k2, { pg: 1 }), 2000, T);
  const n1 = await row(r1.nodeId);
  await startRun(db, 'pg', 2100);
  const claim = (slots: { nodeId: string; free: number }[], now: number) =>
    claimTasks(db, store.dialect, { node: n1, epoch, slots }, now, T, resolve);

  // n2 holds version 1 only: nothing for it; the task waits.
  assert.deepEqual(await claim([{ nodeId: r2.nodeId, free: 2 }], 2200), []);
  const [got] = await claim(
    [
      { nodeId: r2.nodeId, free: 2 },
      { nodeId: r1.nodeId, free: 1 },
    ],
    2300,
  );
  assert.equal(got?.nodeId, r1.nodeId);
  assert.deepEqual(got.spec.source.credentials, { version: 2 });
  assert.equal(got.spec.source.sealedSecrets, undefined);

  // A linked service no node holds credentials for: the task fails at once, saying what to do.
  await startRun(db, 'nobody', 2400);
  assert.deepEqual(await claim([{ nodeId: r1.nodeId, free: 1 }], 2500), []);
  const failed = await db
    .selectFrom('tasks')
    .innerJoin('runs', 'runs.id', 'tasks.run_id')
    .select(['tasks.status', 'tasks.error'])
    .where('runs.pipeline_name', '=', 'nobody')
    .executeTakeFirstOrThrow();
  assert.equal(failed.status, 'failed');
  assert.match(
    failed.error ?? '',
    /no node that is up holds them: set them with `ferry credential set nobody`/,
  );
});

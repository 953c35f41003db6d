/**
 * The store's contract, run against both stores (embedded SQLite and PostgreSQL): one set of
 * migrations, and the operations the scheduler relies on: registration refusals, election on
 * heartbeat, fenced claims within limits, leases, retries and run completion. Fake clock throughout.
 */
import { describe, test, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pg from 'pg';
import { openStore, type Store } from './database.ts';
import { createGateway, regenerateKey } from './queries/gateways.ts';
import { registerNode } from './queries/register-node.ts';
import { recordHeartbeat } from './queries/record-heartbeat.ts';
import { claimTasks } from './queries/claim-tasks.ts';
import { completeAttempt, releaseAttempt, reportProgress } from './queries/attempt-reports.ts';
import { expireAttempts } from './queries/expire-attempts.ts';
import { startRun } from './queries/start-run.ts';
import { applyPipeline } from './queries/pipelines.ts';
import { upsertLinkedService } from './queries/linked-services.ts';
import { setNodeLimit } from './queries/nodes.ts';
import type { SchedulerTimings } from '../scheduler/timings.ts';
import type { HeartbeatRequestT } from '../../protocol/agent.ts';
import type { NodesTable } from './schema.ts';
import { FerryError } from '../../common/errors.ts';
import { endpointResolver } from '../linked-service-secrets.ts';
import { generateNodeKeys } from '../../protocol/node-keys.ts';
import {
  BOOTSTRAP_NAME,
  createApiToken,
  findApiTokenByHash,
  listApiTokens,
  markApiTokenUsed,
  revokeApiToken,
} from './queries/api-tokens.ts';
import { insertAuditEntry, listAuditEntries, pruneAuditLog } from './queries/audit-log.ts';
import { hashToken } from '../../common/crypto.ts';
import { AuditLog } from '../audit-log.ts';
import { createLogger } from '../../common/logger.ts';

const KEYS = generateNodeKeys();
const PUBLIC_KEYS = { signPublicKey: KEYS.signPublicKey, sealPublicKey: KEYS.sealPublicKey };

const T: SchedulerTimings = {
  heartbeatIntervalMs: 1000,
  dispatcherLeaseMs: 5000,
  offlineAfterMs: 5000,
  attemptLeaseMs: 10000,
  electionsEnabled: () => true,
};
const PG_URL = 'postgres://postgres@127.0.0.1:5432/test';

function hb(over: Partial<HeartbeatRequestT> = {}): HeartbeatRequestT {
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
    ...PUBLIC_KEYS,
    ...over,
  };
}

const reg = (key: string, name: string, version = '1.0.0') => ({
  key,
  name,
  version,
  peerHost: '127.0.0.1',
  peerPort: 1,
  tls: false,
  cores: 2,
  memoryBytes: 1e9,
  defaultLimit: 2,
  ...PUBLIC_KEYS,
});
const resolve = async () => ({
  source: { type: 'filesystem', linkedService: 'a', properties: {}, options: {} },
  sink: { type: 'filesystem', linkedService: 'b', properties: {}, options: {} },
});

async function rejects(p: Promise<unknown>, code: string): Promise<FerryError> {
  try {
    await p;
  } catch (err) {
    assert.ok(err instanceof FerryError, String(err));
    assert.equal(err.code, code, err.message);
    return err;
  }
  assert.fail(`expected ${code}`);
}

for (const kind of ['sqlite', 'postgres'] as const) {
  describe(`store on ${kind}`, () => {
    const dir = mkdtempSync(join(tmpdir(), 'ferry-store-'));
    const schema = `store_${process.pid}_${Date.now()}`;
    const open = (): Promise<Store> =>
      openStore(kind === 'sqlite' ? { dataDir: dir } : { url: PG_URL, dataDir: dir, pgSchema: schema });
    let store: Store;
    after(async () => {
      await store?.close();
      rmSync(dir, { recursive: true, force: true });
      if (kind === 'postgres') {
        const c = new pg.Client(PG_URL);
        await c.connect();
        await c.query(`DROP SCHEMA IF EXISTS "${schema}" CASCADE`);
        await c.end();
      }
    });

    test('migrations apply once and re-open cleanly', async () => {
      store = await open();
      await store.close();
      store = await open();
      const rows = await store.db.selectFrom('gateways').selectAll().execute();
      assert.deepEqual(rows, []);
    });

    test('api tokens: kept as their hash, names never reused, use marked once a minute, revoked', async () => {
      const made = await createApiToken(
        store.db,
        { name: 'ci', role: 'reader', createdBy: 'bootstrap' },
        1000,
      );
      assert.match(made.token, /^ferry_tok_/);
      const row = await findApiTokenByHash(store.db, hashToken(made.token));
      assert.equal(row?.name, 'ci');
      assert.equal(row?.role, 'reader');
      assert.equal(row?.created_by, 'bootstrap');
      assert.equal(JSON.stringify(await listApiTokens(store.db)).includes(made.token), false);
      assert.equal(await findApiTokenByHash(store.db, hashToken(`${made.token}x`)), undefined);
      await rejects(
        createApiToken(store.db, { name: 'ci', role: 'admin', createdBy: 'x' }, 1001),
        'conflict',
      );
      await rejects(
        createApiToken(store.db, { name: BOOTSTRAP_NAME, role: 'admin', createdBy: 'x' }, 1),
        'conflict',
      );

      const lastUsed = async () => (await findApiTokenByHash(store.db, row.token_hash))?.last_used_at;
      await markApiTokenUsed(store.db, row.id, 10_000, 60_000);
      assert.equal(await lastUsed(), 10_000);
      await markApiTokenUsed(store.db, row.id, 69_999, 60_000);
      assert.equal(await lastUsed(), 10_000, 'not again within the minute');
      await markApiTokenUsed(store.db, row.id, 70_000, 60_000);
      assert.equal(await lastUsed(), 70_000);

      const revoked = await revokeApiToken(store.db, 'ci', 'admin-2', 80_000);
      assert.equal(revoked.revoked_at, 80_000);
      assert.equal((await findApiTokenByHash(store.db, row.token_hash))?.revoked_by, 'admin-2');
      await rejects(revokeApiToken(store.db, 'ci', 'x', 90_000), 'conflict');
      await rejects(revokeApiToken(store.db, 'nope', 'x', 90_000), 'not_found');
      await rejects(revokeApiToken(store.db, BOOTSTRAP_NAME, 'x', 90_000), 'not_found');
      // A revoked name stays taken, so that the audit log's names each mean one token.
      const again = await rejects(
        createApiToken(store.db, { name: 'ci', role: 'reader', createdBy: 'x' }, 1),
        'conflict',
      );
      assert.match(again.message, /revoked/);
    });

    test('audit log: newest first, filtered by time and actor, pruned past the retention', async () => {
      const entry = (at: number, actor: string) => ({
        at,
        actor,
        actor_role: 'admin',
        method: 'POST',
        route: '/api/v1/gateways',
        params_json: '{}',
        details_json: JSON.stringify({ name: `g${at}` }),
        status: 201,
      });
      for (const [at, actor] of [
        [1000, 'a'],
        [2000, 'b'],
        [3000, 'a'],
        [4000, 'a'],
      ] as const)
        await insertAuditEntry(store.db, entry(at, actor));
      const at = (rows: { at: number }[]) => rows.map((r) => r.at);
      assert.deepEqual(at(await listAuditEntries(store.db, { limit: 10 })), [4000, 3000, 2000, 1000]);
      assert.deepEqual(at(await listAuditEntries(store.db, { limit: 2 })), [4000, 3000]);
      assert.deepEqual(at(await listAuditEntries(store.db, { limit: 10, since: 2000 })), [4000, 3000, 2000]);
      assert.deepEqual(at(await listAuditEntries(store.db, { limit: 10, actor: 'b' })), [2000]);
      assert.deepEqual(at(await listAuditEntries(store.db, { limit: 10, actor: 'a', since: 3500 })), [4000]);
      assert.equal(await pruneAuditLog(store.db, 3000), 2);
      assert.deepEqual(at(await listAuditEntries(store.db, { limit: 10 })), [4000, 3000]);

      // The service's recorder, with a fake clock: 90 days kept, pruned at most once an hour.
      const DAY = 86_400_000;
      const log = new AuditLog(store.db, 90, createLogger('test', 'silent'));
      const rec = (actor: string) => ({
        actor,
        actorRole: 'operator',
        method: 'POST',
        route: '/api/v1/pipelines/{name}/runs',
        params: { name: 'p' },
        details: {},
        status: 201,
      });
      const t0 = 100 * DAY;
      await log.record(rec('old'), t0);
      // The first entry a process writes prunes: the rows of 1970 are far past 90 days.
      assert.deepEqual(at(await listAuditEntries(store.db, { limit: 10 })), [t0]);
      const MIN = 60_000;
      await log.record(rec('a'), t0 + 90 * DAY - 10 * MIN); // prunes: nothing is 90 days old yet
      await log.record(rec('b'), t0 + 90 * DAY + 10 * MIN);
      // `old` is past 90 days now, but this process pruned 20 minutes ago: it waits for the hour.
      assert.equal((await listAuditEntries(store.db, { limit: 10, actor: 'old' })).length, 1);
      await log.record(rec('c'), t0 + 90 * DAY + 50 * MIN + 1);
      assert.deepEqual(
        (await listAuditEntries(store.db, { limit: 10 })).map((r) => r.actor),
        ['c', 'b', 'a'],
      );
      await pruneAuditLog(store.db, Number.MAX_SAFE_INTEGER);
    });

    let key = '';
    let n1: NodesTable;
    let n2: NodesTable;
    const node = async (id: string) =>
      store.db.selectFrom('nodes').selectAll().where('id', '=', id).executeTakeFirstOrThrow();

    test('registration: keys, names, versions and the node cap', async () => {
      const gw = await createGateway(store.db, 'g1', 2, 1000);
      await rejects(createGateway(store.db, 'g1', null, 1000), 'conflict');
      key = gw.key1;
      const r1 = await registerNode(store.db, reg(key, 'n1'), 2, 1000, T);
      n1 = await node(r1.nodeId);
      // The node token is kept only as its hash: a leaked store does not let anyone act as the node.
      assert.match(n1.token_hash, /^[0-9a-f]{64}$/);
      assert.equal(JSON.stringify(n1).includes(r1.nodeToken), false);
      await rejects(registerNode(store.db, reg(key, 'n1'), 2, 1000, T), 'registration_refused');
      await rejects(registerNode(store.db, reg('nope', 'n9'), 2, 1000, T), 'registration_refused');
      await rejects(registerNode(store.db, reg(key, 'old', '0.9.0'), 2, 1000, T), 'registration_refused');
      const r2 = await registerNode(store.db, reg(gw.key2, 'n2'), 2, 1000, T);
      n2 = await node(r2.nodeId);
      const cap = await rejects(registerNode(store.db, reg(key, 'n3'), 2, 1000, T), 'registration_refused');
      assert.match(cap.message, /maximum of 2 nodes/);
      const regen = await regenerateKey(store.db, 'g1', 'key1');
      assert.notEqual(regen.key1, key);
      await store.db.updateTable('gateways').set({ max_nodes: null }).execute();
      await rejects(registerNode(store.db, reg(key, 'n3'), 2, 1000, T), 'registration_refused');
      key = regen.key1;
    });

    test('heartbeats elect one dispatcher with an epoch', async () => {
      const a = await recordHeartbeat(store.db, n1, hb(), 2000, T);
      assert.equal(a.role, 'dispatcher');
      assert.equal(a.epoch, 1);
      const b = await recordHeartbeat(store.db, n2, hb(), 2000, T);
      assert.equal(b.role, 'worker');
      assert.equal(b.dispatcherNodeId, n1.id);
      assert.equal(b.peers.length, 1);
    });

    let runId = '';
    test('a run starts with a plan task; the plan queues copy tasks', async () => {
      await upsertLinkedService(
        store.db,
        {
          name: 'a',
          type: 'filesystem',
          gatewayId: n1.gateway_id,
          properties: { root: '/x' },
          secretSealed: null,
        },
        2000,
      );
      await applyPipeline(
        store.db,
        {
          name: 'p',
          activities: [
            {
              name: 'act',
              source: { linkedService: 'a' },
              sink: { linkedService: 'a' },
              retry: { maxAttempts: 2, backoffMs: 100 },
            },
          ],
        },
        2000,
      );
      runId = await startRun(store.db, 'p', 2000);
      const [plan] = await claimTasks(
        store.db,
        store.dialect,
        { node: n1, epoch: 1, slots: [{ nodeId: n1.id, free: 2 }] },
        2100,
        T,
        resolve,
      );
      assert.ok(plan);
      assert.equal(plan.spec.work.kind, 'plan');
      const parts = [0, 1, 2, 3, 4].map(() => ({ kind: 'whole' as const }));
      await completeAttempt(
        store.db,
        n1,
        plan.attemptId,
        { outcome: 'succeeded', result: { kind: 'plan', partitions: parts } },
        2200,
      );
      const tasks = await store.db
        .selectFrom('tasks')
        .selectAll()
        .where('run_id', '=', runId)
        .where('kind', '=', 'copy')
        .execute();
      assert.equal(tasks.length, 5);
    });

    test("claims are fenced by the epoch and never exceed a node's limit", async () => {
      await rejects(
        claimTasks(
          store.db,
          store.dialect,
          { node: n2, epoch: 1, slots: [{ nodeId: n2.id, free: 2 }] },
          2300,
          T,
          resolve,
        ),
        'stale_epoch',
      );
      await rejects(
        claimTasks(
          store.db,
          store.dialect,
          { node: n1, epoch: 0, slots: [{ nodeId: n1.id, free: 2 }] },
          2300,
          T,
          resolve,
        ),
        'stale_epoch',
      );
      await setNodeLimit(store.db, 'g1', 'n2', 1, 2300);
      const got = await claimTasks(
        store.db,
        store.dialect,
        {
          node: n1,
          epoch: 1,
          slots: [
            { nodeId: n1.id, free: 5 },
            { nodeId: n2.id, free: 5 },
          ],
        },
        2300,
        T,
        resolve,
      );
      assert.equal(got.filter((a) => a.nodeId === n1.id).length, 2, 'n1 limit 2');
      assert.equal(got.filter((a) => a.nodeId === n2.id).length, 1, 'n2 limit set to 1');
      const again = await claimTasks(
        store.db,
        store.dialect,
        {
          node: n1,
          epoch: 1,
          slots: [
            { nodeId: n1.id, free: 5 },
            { nodeId: n2.id, free: 5 },
          ],
        },
        2300,
        T,
        resolve,
      );
      assert.equal(again.length, 0, 'no capacity left');
    });

    test('a lapsed lease loses the attempt; a late report is refused; the task runs again', async () => {
      const active = await store.db
        .selectFrom('attempts')
        .selectAll()
        .where('node_id', '=', n2.id)
        .where('status', '=', 'dispatched')
        .execute();
      assert.equal(active.length, 1);
      const lostId = active[0]!.id;
      // n1 keeps heartbeating (and renews its attempts); n2 went silent.
      const n1Running = (
        await store.db
          .selectFrom('attempts')
          .select('id')
          .where('node_id', '=', n1.id)
          .where('status', '=', 'dispatched')
          .execute()
      ).map((r) => r.id);
      await recordHeartbeat(store.db, n1, hb({ running: n1Running }), 9000, T);
      const lost = await expireAttempts(store.db, 9000, T.offlineAfterMs);
      assert.equal(lost, 1);
      await rejects(
        reportProgress(store.db, n2, lostId, { rows: 0, bytes: 0 }, 9000, T.attemptLeaseMs),
        'lease_lost',
      );
      await rejects(
        completeAttempt(
          store.db,
          n2,
          lostId,
          {
            outcome: 'succeeded',
            result: { kind: 'copy', rowsRead: 0, rowsWritten: 0, bytesRead: 0, bytesWritten: 0, outputs: [] },
          },
          9000,
        ),
        'lease_lost',
      );
      const hbRes = await recordHeartbeat(store.db, n2, hb({ running: [lostId] }), 9100, T);
      assert.deepEqual(hbRes.revoked, [lostId], 'the node is told to stop it');
      const task = await store.db
        .selectFrom('tasks')
        .selectAll()
        .where('id', '=', active[0]!.task_id)
        .executeTakeFirstOrThrow();
      assert.equal(task.status, 'queued');
    });

    test('release requeues without counting; failures retry then fail the run', async () => {
      const mine = await store.db
        .selectFrom('attempts')
        .selectAll()
        .where('node_id', '=', n1.id)
        .where('status', '=', 'dispatched')
        .execute();
      await releaseAttempt(store.db, n1, mine[0]!.id, 'worker unreachable', 9200);
      const released = await store.db
        .selectFrom('tasks')
        .selectAll()
        .where('id', '=', mine[0]!.task_id)
        .executeTakeFirstOrThrow();
      assert.equal(released.status, 'queued');
      assert.equal(released.attempts, 0);
      for (const a of mine.slice(1)) {
        await completeAttempt(
          store.db,
          n1,
          a.id,
          {
            outcome: 'succeeded',
            result: {
              kind: 'copy',
              rowsRead: 3,
              rowsWritten: 3,
              bytesRead: 10,
              bytesWritten: 10,
              outputs: [],
            },
          },
          9300,
        );
      }
      // Everything left fails, retryably, until its attempts run out.
      for (let now = 20_000; now < 200_000; now += 20_000) {
        // Heartbeats 20 s apart: the lease lapses each time and n1 wins it again under a new epoch.
        const { epoch, role } = await recordHeartbeat(store.db, n1, hb(), now, T);
        assert.equal(role, 'dispatcher');
        const got = await claimTasks(
          store.db,
          store.dialect,
          { node: n1, epoch, slots: [{ nodeId: n1.id, free: 5 }] },
          now,
          T,
          resolve,
        );
        for (const a of got) {
          await completeAttempt(
            store.db,
            n1,
            a.attemptId,
            { outcome: 'failed', error: { code: 'store_unreachable', message: 'down', retryable: true } },
            now + 1,
          );
        }
        const run = await store.db
          .selectFrom('runs')
          .selectAll()
          .where('id', '=', runId)
          .executeTakeFirstOrThrow();
        if (run.status !== 'running') break;
      }
      const run = await store.db
        .selectFrom('runs')
        .selectAll()
        .where('id', '=', runId)
        .executeTakeFirstOrThrow();
      assert.equal(run.status, 'failed');
      assert.match(run.error ?? '', /gave up after 2 attempts/);
      const ok = await store.db
        .selectFrom('tasks')
        .select('status')
        .where('run_id', '=', runId)
        .where('status', '=', 'succeeded')
        .execute();
      assert.equal(ok.length, 1 + mine.length - 1, 'the plan and the completed copies stay succeeded');
    });

    test('a linked service deleted under a run fails its tasks with a clear error instead of blocking claims', async () => {
      await upsertLinkedService(
        store.db,
        {
          name: 'doomed',
          type: 'filesystem',
          gatewayId: n1.gateway_id,
          properties: { root: '/y' },
          secretSealed: null,
        },
        300_000,
      );
      await applyPipeline(
        store.db,
        {
          name: 'q',
          activities: [{ name: 'act', source: { linkedService: 'doomed' }, sink: { linkedService: 'a' } }],
        },
        300_000,
      );
      const id = await startRun(store.db, 'q', 300_000);
      await store.db.deleteFrom('linked_services').where('name', '=', 'doomed').execute();
      const { epoch } = await recordHeartbeat(store.db, n1, hb(), 300_001, T);
      const realResolve = endpointResolver(Buffer.alloc(32));
      const got = await claimTasks(
        store.db,
        store.dialect,
        { node: n1, epoch, slots: [{ nodeId: n1.id, free: 5 }] },
        300_002,
        T,
        realResolve,
      );
      assert.deepEqual(got, []);
      const run = await store.db
        .selectFrom('runs')
        .selectAll()
        .where('id', '=', id)
        .executeTakeFirstOrThrow();
      assert.equal(run.status, 'failed');
      assert.match(run.error ?? '', /linked service "doomed" does not exist/);
    });

    test('tasks completing at the same moment settle their activity and run exactly once', async () => {
      await applyPipeline(
        store.db,
        {
          name: 'r',
          activities: [{ name: 'act', source: { linkedService: 'a' }, sink: { linkedService: 'a' } }],
        },
        400_000,
      );
      for (let round = 0; round < 5; round++) {
        const id = await startRun(store.db, 'r', 400_000 + round);
        const { epoch } = await recordHeartbeat(store.db, n1, hb(), 400_100 + round, T);
        const [plan] = await claimTasks(
          store.db,
          store.dialect,
          { node: n1, epoch, slots: [{ nodeId: n1.id, free: 8 }] },
          400_101 + round,
          T,
          resolve,
        );
        const whole = { kind: 'whole' as const };
        await completeAttempt(
          store.db,
          n1,
          plan!.attemptId,
          { outcome: 'succeeded', result: { kind: 'plan', partitions: [whole, whole, whole, whole] } },
          400_102 + round,
        );
        await store.db.updateTable('nodes').set({ limit_override: 8 }).where('id', '=', n1.id).execute();
        const copies = await claimTasks(
          store.db,
          store.dialect,
          { node: n1, epoch, slots: [{ nodeId: n1.id, free: 8 }] },
          400_103 + round,
          T,
          resolve,
        );
        assert.equal(copies.length, 4);
        const done = {
          kind: 'copy' as const,
          rowsRead: 1,
          rowsWritten: 1,
          bytesRead: 1,
          bytesWritten: 1,
          outputs: [],
        };
        await Promise.all(
          copies.map((a) =>
            completeAttempt(
              store.db,
              n1,
              a.attemptId,
              { outcome: 'succeeded', result: done },
              400_104 + round,
            ),
          ),
        );
        const run = await store.db
          .selectFrom('runs')
          .selectAll()
          .where('id', '=', id)
          .executeTakeFirstOrThrow();
        assert.equal(run.status, 'succeeded', `round ${round}`);
      }
    });

    test('finalize after the copies, watermark advanced only by a succeeded activity, verification', async () => {
      await applyPipeline(
        store.db,
        {
          name: 'inc',
          activities: [
            {
              name: 'act',
              // Store options pass through the pipeline's type untyped; the service reads this one.
              source: { linkedService: 'a', ...{ watermarkColumn: 'id' } },
              sink: { linkedService: 'a' },
              retry: { maxAttempts: 1 },
            },
          ],
        },
        500_000,
      );
      let now = 500_000;
      const claim = async () => {
        const { epoch } = await recordHeartbeat(store.db, n1, hb(), ++now, T);
        await store.db.updateTable('nodes').set({ limit_override: 8 }).where('id', '=', n1.id).execute();
        return claimTasks(
          store.db,
          store.dialect,
          { node: n1, epoch, slots: [{ nodeId: n1.id, free: 8 }] },
          ++now,
          T,
          resolve,
        );
      };
      const status = async (id: string) =>
        (await store.db.selectFrom('runs').select('status').where('id', '=', id).executeTakeFirstOrThrow())
          .status;
      const copy = (over: Partial<{ bytesWritten: number; converted: boolean }> = {}) => ({
        outcome: 'succeeded' as const,
        result: {
          kind: 'copy' as const,
          rowsRead: 2,
          rowsWritten: 2,
          bytesRead: 10,
          bytesWritten: over.bytesWritten ?? 10,
          outputs: [],
          ...(over.converted ? { converted: true } : {}),
        },
      });

      // Run 1: no watermark yet; the plan copies up to 42 and asks for a finalize.
      const run1 = await startRun(store.db, 'inc', ++now);
      const [plan1] = await claim();
      assert.deepEqual(plan1!.spec.work, { kind: 'plan', watermark: null });
      const window = { column: 'id', after: null, upTo: '42' };
      await completeAttempt(
        store.db,
        n1,
        plan1!.attemptId,
        {
          outcome: 'succeeded',
          result: {
            kind: 'plan',
            partitions: [{ kind: 'whole' }, { kind: 'whole' }],
            window,
            finalize: true,
          },
        },
        ++now,
      );
      const copies = await claim();
      assert.deepEqual(
        copies.map((a) => a.spec.work),
        [0, 1].map((index) => ({ kind: 'copy', index, partition: { kind: 'whole' }, window })),
      );
      // Re-encoded output may differ in bytes (converted); rows still have to match.
      await completeAttempt(
        store.db,
        n1,
        copies[0]!.attemptId,
        copy({ bytesWritten: 7, converted: true }),
        ++now,
      );
      await completeAttempt(store.db, n1, copies[1]!.attemptId, copy(), ++now);
      assert.equal(await status(run1), 'running', 'waits for its finalize');
      const [fin] = await claim();
      assert.deepEqual(fin!.spec.work, { kind: 'finalize' });
      await completeAttempt(
        store.db,
        n1,
        fin!.attemptId,
        { outcome: 'succeeded', result: { kind: 'finalize' } },
        ++now,
      );
      assert.equal(await status(run1), 'succeeded');

      // Run 2 starts from 42; its copy writes fewer bytes than it read without re-encoding: it fails,
      // and the watermark stays where run 1 left it.
      const run2 = await startRun(store.db, 'inc', ++now);
      const [plan2] = await claim();
      assert.deepEqual(plan2!.spec.work, { kind: 'plan', watermark: '42' });
      await completeAttempt(
        store.db,
        n1,
        plan2!.attemptId,
        {
          outcome: 'succeeded',
          result: {
            kind: 'plan',
            partitions: [{ kind: 'whole' }],
            window: { column: 'id', after: '42', upTo: '50' },
          },
        },
        ++now,
      );
      const [bad] = await claim();
      await completeAttempt(store.db, n1, bad!.attemptId, copy({ bytesWritten: 9 }), ++now);
      assert.equal(await status(run2), 'failed');
      const failedRun = await store.db
        .selectFrom('runs')
        .select('error')
        .where('id', '=', run2)
        .executeTakeFirstOrThrow();
      assert.match(
        failedRun.error ?? '',
        /verification failed: read 2 rows \/ 10 bytes, wrote 2 rows \/ 9 bytes/,
      );

      const run3 = await startRun(store.db, 'inc', ++now);
      const [plan3] = await claim();
      assert.deepEqual(
        plan3!.spec.work,
        { kind: 'plan', watermark: '42' },
        'a failed run does not advance it',
      );
      // No new rows: no copy tasks, and the activity succeeds at once.
      await completeAttempt(
        store.db,
        n1,
        plan3!.attemptId,
        {
          outcome: 'succeeded',
          result: { kind: 'plan', partitions: [], window: { column: 'id', after: '42', upTo: '42' } },
        },
        ++now,
      );
      assert.equal(await status(run3), 'succeeded');
    });
  });
}

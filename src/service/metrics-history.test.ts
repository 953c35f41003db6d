/**
 * The metrics history on both stores, with a fake clock: one sample per node and 10 s bucket (two
 * replicas sampling at once write one), figures only while a node reports, 5-minute averages past
 * the sample retention, and nothing past the average retention: the tables stay bounded however
 * long the service runs.
 */
import { describe, test, after, before } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pg from 'pg';
import { openStore, type Store } from './store/database.ts';
import { createGateway } from './store/queries/gateways.ts';
import { registerNode } from './store/queries/register-node.ts';
import { recordHeartbeat } from './store/queries/record-heartbeat.ts';
import { upsertLinkedService } from './store/queries/linked-services.ts';
import { applyPipeline } from './store/queries/pipelines.ts';
import { startRun } from './store/queries/start-run.ts';
import { listNodeHistory, listQueueHistory } from './store/queries/metrics-history.ts';
import { MetricsHistory } from './metrics-history.ts';
import { createLogger } from '../common/logger.ts';
import { generateNodeKeys } from '../protocol/node-keys.ts';
import type { SchedulerTimings } from './scheduler/timings.ts';
import type { HeartbeatRequestT } from '../protocol/agent.ts';
import type { NodesTable } from './store/schema.ts';

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
const MIN = 60_000;
const HOUR = 60 * MIN;
const DAY = 24 * HOUR;
const T0 = 1_800_000_000_000 - (1_800_000_000_000 % HOUR);

function hb(cpuPercent: number): HeartbeatRequestT {
  return {
    version: '1.0.0',
    metrics: {
      cpuPercent,
      memoryAvailableBytes: 4e9,
      memoryTotalBytes: 8e9,
      networkInBytesPerSec: 1000,
      networkOutBytesPerSec: 2000,
    },
    running: [],
    defaultLimit: 4,
    draining: false,
    upgrading: false,
    tls: false,
    peerHost: '127.0.0.1',
    peerPort: 1,
    reach: [],
    ...PUBLIC_KEYS,
  };
}

const reg = (key: string, name: string) => ({
  key,
  name,
  version: '1.0.0',
  peerHost: '127.0.0.1',
  peerPort: 1,
  tls: false,
  cores: 2,
  memoryBytes: 8e9,
  defaultLimit: 4,
  ...PUBLIC_KEYS,
});

for (const kind of ['sqlite', 'postgres'] as const) {
  describe(`metrics history on ${kind}`, () => {
    const dir = mkdtempSync(join(tmpdir(), 'ferry-history-'));
    const schema = `history_${process.pid}_${Date.now()}`;
    let store: Store;
    let n1: NodesTable;
    let n2: NodesTable;
    let gatewayId = '';
    const log = createLogger('test', 'silent');
    const retention = { sampleRetentionMs: 1 * HOUR, averageRetentionMs: 6 * HOUR };
    const rows = async (table: 'node_metrics_history' | 'gateway_metrics_history', resolution: number) =>
      store.db.selectFrom(table).selectAll().where('resolution_s', '=', resolution).orderBy('at').execute();

    before(async () => {
      store = await openStore(
        kind === 'sqlite' ? { dataDir: dir } : { url: PG_URL, dataDir: dir, pgSchema: schema },
      );
      const gw = await createGateway(store.db, 'g', null, T0);
      gatewayId = gw.id;
      const node = async (name: string) => {
        const r = await registerNode(store.db, reg(gw.key1, name), 4, T0, T);
        return store.db.selectFrom('nodes').selectAll().where('id', '=', r.nodeId).executeTakeFirstOrThrow();
      };
      n1 = await node('n1');
      n2 = await node('n2');
      // One task queued from T0 on, and never claimed: the queue samples see it wait.
      await upsertLinkedService(
        store.db,
        { name: 'a', type: 'filesystem', gatewayId, properties: { root: '/x' }, secretSealed: null },
        T0,
      );
      await applyPipeline(
        store.db,
        {
          name: 'p',
          activities: [{ name: 'act', source: { linkedService: 'a' }, sink: { linkedService: 'a' } }],
        },
        T0,
      );
      await startRun(store.db, 'p', T0);
    });
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

    test('one sample per node and 10 s bucket, whichever replica and however often it is asked', async () => {
      const a = new MetricsHistory(store.db, T, retention, log);
      const b = new MetricsHistory(store.db, T, retention, log);
      await recordHeartbeat(store.db, n1, hb(10), T0, T);
      await recordHeartbeat(store.db, n2, hb(20), T0, T);
      // Not during the grace after a service restart: every node looks silent then.
      const starting = new MetricsHistory(store.db, { ...T, electionsEnabled: () => false }, retention, log);
      assert.equal(await starting.sample(T0), false);
      assert.equal((await rows('node_metrics_history', 10)).length, 0);
      assert.equal(await a.sample(T0), true);
      assert.equal(await a.sample(T0 + 9_999), false); // this process already sampled the bucket
      assert.equal(await b.sample(T0 + 5_000), true); // another replica tries: the key keeps one row
      assert.equal((await rows('node_metrics_history', 10)).length, 2);
      assert.equal((await rows('gateway_metrics_history', 10)).length, 1);
      assert.equal(await a.sample(T0 + 10_000), true);
      assert.equal((await rows('node_metrics_history', 10)).length, 4);
      const [first] = await listNodeHistory(store.db, n1.id, T0);
      assert.deepEqual(first, {
        at: T0,
        samples: 1,
        status: 'Online',
        cpuPercent: 10,
        memoryAvailableBytes: 4e9,
        memoryTotalBytes: 8e9,
        networkInBytesPerSec: 1000,
        networkOutBytesPerSec: 2000,
        running: 0,
        limit: 4,
      });
      const [queue] = await listQueueHistory(store.db, gatewayId, T0);
      assert.deepEqual(queue, { at: T0, samples: 1, queued: 1, oldestWaitMs: 0 });
      await store.db.deleteFrom('node_metrics_history').execute();
      await store.db.deleteFrom('gateway_metrics_history').execute();
    });

    test('eight hours on a fake clock: averaged past 1 h, gone past 6 h, bounded', async () => {
      const history = new MetricsHistory(store.db, T, retention, log);
      const end = T0 + 8 * HOUR;
      // n1 reports all along, its CPU following the minute (0, 10, ... 90%); n2 stops after 2 h.
      for (let now = T0, m = 0; now <= end; now += MIN, m++) {
        await recordHeartbeat(store.db, n1, hb((m % 10) * 10), now, T);
        if (now < T0 + 2 * HOUR) await recordHeartbeat(store.db, n2, hb(50), now, T);
        await history.tick(now);
      }
      const samples = await rows('node_metrics_history', 10);
      const averages = await rows('node_metrics_history', 300);
      // Samples only within the last hour (and the 5-minute bucket plus the minute compaction waits).
      assert.ok(samples.length > 0);
      assert.ok(
        Number(samples[0]?.at) >= end - HOUR - 5 * MIN - MIN,
        `oldest sample ${Number(samples[0]?.at) - end}`,
      );
      // Averages only within 6 hours: nothing from the first two.
      assert.ok(
        Number(averages[0]?.at) >= end - 6 * HOUR - MIN,
        `oldest average ${Number(averages[0]?.at) - end}`,
      );
      // Per node: at most an hour (and 6 min) of minute samples and 6 h of 5-minute points.
      for (const id of [n1.id, n2.id]) {
        const mine = [...samples, ...averages].filter((r) => r.node_id === id).length;
        assert.ok(mine <= 66 + 73, `${mine} rows for one node`);
      }
      // An average of n1 is the mean of its five samples (minutes 0-4: 20%, minutes 5-9: 70%).
      const n1Averages = averages.filter((r) => r.node_id === n1.id);
      assert.ok(n1Averages.length >= 60);
      for (const a of n1Averages) {
        assert.equal(a.samples, 5);
        assert.equal(a.status, 'Online');
        assert.ok(a.cpu_percent === 20 || a.cpu_percent === 70, `cpu ${a.cpu_percent}`);
        assert.equal(a.memory_available_bytes, 4e9);
        assert.equal(a.jobs_running, 0);
      }
      // n2 stopped reporting: Offline, with no figures carried on.
      for (const a of averages.filter((r) => r.node_id === n2.id)) {
        assert.equal(a.status, 'Offline');
        assert.equal(a.cpu_percent, null);
        assert.equal(a.jobs_running, null);
        assert.equal(a.jobs_limit, 4);
      }
      // The queue: one task, waiting longer and longer.
      const queue = await listQueueHistory(store.db, gatewayId, end - 6 * HOUR);
      assert.ok(queue.length > 60);
      assert.ok(queue.every((q) => q.queued === 1 && q.oldestWaitMs > 2 * HOUR));
      const gatewayRows = (await rows('gateway_metrics_history', 10)).length;
      assert.ok(gatewayRows <= 66, `${gatewayRows} queue samples`);

      // A week on with no heartbeat: everything but the newest bucket's samples is gone.
      const later = end + 7 * DAY;
      await history.tick(later);
      const left = await store.db.selectFrom('node_metrics_history').selectAll().execute();
      assert.equal(left.length, 2);
      assert.ok(left.every((r) => Number(r.at) === later - (later % 10_000) && r.status === 'Offline'));
      assert.equal((await store.db.selectFrom('gateway_metrics_history').selectAll().execute()).length, 1);
    });
  });
}

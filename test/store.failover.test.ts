/**
 * The service survives its PostgreSQL store failing over: connections cut under it (what a restart
 * or failover does, `pg_terminate_backend`) and a whole PostgreSQL stopped and started again. The
 * service stays up, answers 503 with Retry-After while the store is away, and the run completes
 * with every file copied.
 */
import { test, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { createServer } from 'node:net';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { setTimeout as sleep } from 'node:timers/promises';
import pg from 'pg';
import { eventually } from './helpers/cluster.ts';
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

const run = promisify(execFile);
const ADMIN = { host: '127.0.0.1', user: 'postgres', database: 'postgres' };

/** A database of its own on the shared PostgreSQL, dropped afterwards (its connections with it). */
async function ownDatabase(
  t: TestContext,
  port = 5432,
): Promise<{ url: string; admin: pg.Client; name: string }> {
  const name = `ferry_fo_${process.pid}_${Date.now()}`;
  const admin = new pg.Client({ ...ADMIN, port });
  await admin.connect();
  admin.on('error', () => {});
  t.after(async () => {
    await admin.query(`DROP DATABASE IF EXISTS "${name}" WITH (FORCE)`).catch(() => undefined);
    await admin.end().catch(() => undefined);
  });
  await admin.query(`CREATE DATABASE "${name}"`);
  return { url: `postgres://postgres@127.0.0.1:${port}/${name}`, admin, name };
}

async function freePort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const address = server.address();
  await new Promise<void>((r) => server.close(() => r()));
  if (typeof address !== 'object' || address === null) throw new Error('no port');
  return address.port;
}

/** A PostgreSQL 15 cluster of its own (trust auth, its own port), dropped when the test ends. */
async function privateCluster(
  t: TestContext,
): Promise<{ port: number; stop(): Promise<void>; start(): Promise<void> }> {
  const name = `ferry_fo_${process.pid}_${Date.now()}`;
  const port = await freePort();
  t.after(async () => {
    await run('pg_dropcluster', ['--stop', '15', name]).catch(() => undefined);
  });
  await run('pg_createcluster', ['15', name, '-p', String(port), '--', '--auth=trust']);
  const ctl = async (action: 'start' | 'stop'): Promise<void> => {
    await run('pg_ctlcluster', [
      '--skip-systemctl-redirect',
      '15',
      name,
      action,
      ...(action === 'stop' ? ['-m', 'fast'] : []),
    ]);
  };
  await ctl('start');
  return { port, stop: () => ctl('stop'), start: () => ctl('start') };
}

async function filesRun(g: Gateway, name: string): Promise<string> {
  await fsLinkedServices(g, { in: 'src', out: 'dst' }, { in: 'in', out: 'out' });
  makeFiles(join(g.root, 'in'), '', 24, () => 200 * 1024);
  return runPipeline(g, {
    name,
    activities: [
      {
        name: 'files',
        source: { linkedService: 'src', filesPerTask: 1 },
        sink: { linkedService: 'dst' },
        maxBytesPerSecond: 200 * 1024,
      },
    ],
  });
}

async function someCopyRunning(g: Gateway, runId: string): Promise<void> {
  await eventually('a copy task running', async () => {
    const r = await g.svc.api.call('GET', `/api/v1/runs/${runId}`);
    return r.tasks.some((tk: any) => tk.kind === 'copy' && tk.status === 'running');
  });
}

function assertCopied(g: Gateway, done: any): void {
  assert.equal(done.status, 'succeeded', JSON.stringify(done.error));
  assert.deepEqual(
    done.tasks.filter((tk: any) => tk.status !== 'succeeded').map((tk: any) => tk.error),
    [],
  );
  assert.deepEqual(treeDigest(join(g.root, 'out')), treeDigest(join(g.root, 'in')));
  // Nodes kept working while the store was away: no attempt was judged lost or failed for it.
  const ended = done.tasks
    .flatMap((tk: any) => tk.attemptList)
    .filter((a: any) => a.status === 'lost' || a.status === 'failed');
  assert.deepEqual(ended, []);
}

test("the service's store connections cut again and again during a run: the service stays up, the run completes, the sweep goes on", async (t) => {
  const db = await ownDatabase(t);
  const g = await gatewayWithNodes(t, 3, { service: { store: db.url }, nodeArgs: ['--limit', '2'] });
  const runId = await filesRun(g, 'cut');
  await someCopyRunning(g, runId);

  // Every 50 ms the connection holding the sweep's advisory lock, if one does (mid-sweep); every
  // 700 ms all the service's connections.
  const cut = { lock: 0, all: 0 };
  const finished = waitRun(g, runId, 120_000);
  let done = false;
  void finished.finally(() => (done = true)).catch(() => undefined);
  // Until the run is done and the lock was cut mid-sweep a few times (a sweep holds it for
  // milliseconds, so catching it takes a while).
  const until = Date.now() + 90_000;
  for (let i = 1; (!done || cut.lock < 3) && g.svc.proc.alive && Date.now() < until; i++) {
    const lock = await db.admin.query(
      `SELECT count(pg_terminate_backend(l.pid))::int AS n FROM pg_locks l JOIN pg_database d ON d.oid = l.database
       WHERE l.locktype = 'advisory' AND d.datname = $1 AND l.granted`,
      [db.name],
    );
    cut.lock += lock.rows[0].n;
    if (i % 14 === 0) {
      const all = await db.admin.query(
        'SELECT count(pg_terminate_backend(pid))::int AS n FROM pg_stat_activity WHERE datname = $1 AND pid <> pg_backend_pid()',
        [db.name],
      );
      cut.all += all.rows[0].n;
    }
    await sleep(50);
  }
  assert.ok(g.svc.proc.alive, `the service died:\n${g.svc.proc.output.slice(-3000)}`);
  t.diagnostic(`cut ${cut.lock} lock holders and ${cut.all} connections`);
  assert.ok(cut.lock >= 3 && cut.all >= 5, `too few connections were cut: ${JSON.stringify(cut)}`);
  assertCopied(g, await finished);

  // The sweep took its lock again: it still runs elections. The dispatcher killed, another takes over.
  const before = await nodesView(g);
  const dispatcher = g.nodes.find((n) => n.name === before.gateway.dispatcher);
  assert.ok(dispatcher, JSON.stringify(before.gateway));
  dispatcher.proc.kill('SIGKILL');
  await eventually(
    'another dispatcher elected',
    async () => {
      const view = await nodesView(g);
      return view.gateway.dispatcher !== null && view.gateway.dispatcher !== dispatcher.name;
    },
    30_000,
  );
});

test('PostgreSQL stopped and started under a running service: 503 with Retry-After meanwhile, and the run completes', async (t) => {
  // pg_createcluster (postgresql-common) writes under /etc/postgresql and /var/lib/postgresql.
  if (process.getuid?.() !== 0) {
    t.skip('making a private PostgreSQL cluster (pg_createcluster) needs root');
    return;
  }
  const cluster = await privateCluster(t);
  const db = await ownDatabase(t, cluster.port);
  // The admin connection dies with the cluster; the database goes with the cluster.
  await db.admin.end();
  const g = await gatewayWithNodes(t, 2, { service: { store: db.url }, nodeArgs: ['--limit', '2'] });
  const runId = await filesRun(g, 'restart-pg');
  await someCopyRunning(g, runId);

  await cluster.stop();
  const during = await g.svc.api.raw('GET', '/api/v1/gateways');
  assert.equal(during.status, 503, JSON.stringify(during.body));
  assert.equal(during.body.code, 'unavailable');
  assert.match(during.body.message, /store is unavailable/);
  assert.equal(during.body.retryable, true);
  const retryAfter = await fetch(`${g.svc.url}/api/v1/gateways`, {
    headers: { authorization: `Bearer ${g.svc.token}` },
  });
  assert.equal(retryAfter.status, 503);
  assert.match(retryAfter.headers.get('retry-after') ?? '', /^\d+$/);
  await sleep(3000);
  assert.ok(g.svc.proc.alive, `the service died:\n${g.svc.proc.output.slice(-3000)}`);
  await cluster.start();

  const done = await waitRun(g, runId, 120_000);
  assert.ok(g.svc.proc.alive);
  assertCopied(g, done);
});

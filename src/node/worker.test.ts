/**
 * The Worker in-process, with gates instead of sleeps: every attempt's execution waits on a gate the
 * test opens (or fails), and the test waits on promises the fake service resolves when a report lands.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import pino from 'pino';
import { Worker, type WorkerDeps } from './worker.ts';
import { FerryError } from '../common/errors.ts';
import { AssignedAttempt, type AssignedAttemptT, type CompleteRequestT } from '../protocol/agent.ts';
import type { DispatchRequestT } from '../protocol/peer.ts';
import type { TaskResultT } from '../protocol/task.ts';
import type { NodeContext, TaskAttempt } from './task-executor.ts';
import { UploadBudget } from '../common/upload-budget.ts';
import { validator } from '../protocol/validate.ts';
import { generateNodeKeys } from '../protocol/node-keys.ts';
import { sealSecrets } from '../protocol/sealed-secrets.ts';
import { secretOpener } from './task-secrets.ts';
import { CredentialStore } from './credential-store.ts';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

const assignedAttempt = validator(AssignedAttempt);

interface Deferred<T> {
  promise: Promise<T>;
  resolve(v: T): void;
  reject(e: unknown): void;
}

function deferred<T>(): Deferred<T> {
  let resolve!: (v: T) => void;
  let reject!: (e: unknown) => void;
  const promise = new Promise<T>((res, rej) => {
    resolve = res;
    reject = rej;
  });
  return { promise, resolve, reject };
}

/** A map of deferreds created on first touch, from either side. */
class Signals<T> {
  readonly #m = new Map<string, Deferred<T>>();
  get(id: string): Deferred<T> {
    let d = this.#m.get(id);
    if (!d) this.#m.set(id, (d = deferred<T>()));
    return d;
  }
  has(id: string): boolean {
    return this.#m.has(id);
  }
}

const copyResult: TaskResultT = {
  kind: 'copy',
  rowsRead: 0,
  rowsWritten: 0,
  bytesRead: 3,
  bytesWritten: 3,
  outputs: [{ name: 'a.bin', bytes: 3, sha256: 'abc' }],
};

function attempt(id: string, epoch = 1): AssignedAttemptT {
  const a: AssignedAttemptT = {
    attemptId: id,
    taskId: `task-${id}`,
    nodeId: 'node-self',
    epoch,
    queuedAt: 1_700_000_000_000,
    spec: {
      runId: 'run-1',
      activity: 'copy-files',
      source: { type: 'filesystem', linkedService: 'src', properties: { root: '/in' }, options: {} },
      sink: { type: 'filesystem', linkedService: 'dst', properties: { root: '/out' }, options: {} },
      work: {
        kind: 'copy',
        index: 0,
        partition: { kind: 'files', files: [{ path: 'a.bin', size: 3 }] },
      },
    },
  };
  assert.ok(assignedAttempt.check(a), 'the test builds attempts that match the protocol');
  return a;
}

function dispatch(id: string, epoch = 1): DispatchRequestT {
  return { epoch, attempt: attempt(id, epoch) };
}

/** A Worker wired to recorders: gates decide when each execution ends. */
function harness(limit = 2, openSecrets: WorkerDeps['openSecrets'] = (spec) => spec) {
  const executed = new Map<string, TaskAttempt>(); // what execute() was given
  const started = new Signals<NodeContext>(); // resolved when execute() begins
  const gates = new Signals<TaskResultT>(); // the test resolves or rejects: execute() ends
  const completed = new Signals<CompleteRequestT>(); // resolved when the outcome is reported
  const released = new Signals<string>(); // resolved when the attempt is handed back
  const completes: { id: string; c: CompleteRequestT }[] = [];
  const releases: { id: string; reason: string }[] = [];
  const progress: string[] = [];
  let changes = 0;
  const deps: WorkerDeps = {
    openSecrets,
    service: {
      progress: async (id) => {
        progress.push(id);
      },
      complete: async (id, c) => {
        completes.push({ id, c });
        completed.get(id).resolve(c);
      },
      release: async (id, reason) => {
        releases.push({ id, reason });
        released.get(id).resolve(reason);
      },
    },
    execute: (a, ctx) => {
      executed.set(a.attemptId, a);
      started.get(a.attemptId).resolve(ctx);
      const gate = gates.get(a.attemptId);
      // Like a real connector: an abort ends the execution with the abort's reason.
      ctx.signal.addEventListener('abort', () => gate.reject(ctx.signal.reason), { once: true });
      return gate.promise;
    },
    allowedRoots: [],
    uploadBudget: new UploadBudget(),
    log: pino({ level: 'silent' }),
    progressIntervalMs: 60_000,
  };
  const worker = new Worker(deps);
  worker.onChange(() => {
    changes++;
  });
  worker.limit = limit;
  return {
    worker,
    uploadBudget: deps.uploadBudget,
    started,
    gates,
    completed,
    released,
    completes,
    releases,
    progress,
    executed,
    changes: () => changes,
  };
}

function throwsCode(fn: () => unknown, code: string): void {
  assert.throws(fn, (err: unknown) => err instanceof FerryError && err.code === code, `expected ${code}`);
}

test('never runs more than its limit: the third accept at limit 2 is refused with capacity', async () => {
  const h = harness(2);
  assert.deepEqual(h.worker.accept(dispatch('a1'), true), { accepted: true });
  assert.deepEqual(h.worker.accept(dispatch('a2'), true), { accepted: true });
  assert.equal(h.worker.runningCount, 2);
  throwsCode(() => h.worker.accept(dispatch('a3'), true), 'capacity');
  assert.equal(h.worker.runningCount, 2);
  assert.deepEqual(h.worker.runningIds().sort(), ['a1', 'a2']);
  // A repeated dispatch of an attempt it already runs is no new work: accepted, not counted twice.
  assert.deepEqual(h.worker.accept(dispatch('a1'), true), { accepted: true });
  assert.equal(h.worker.runningCount, 2);
  const contexts = await Promise.all([h.started.get('a1').promise, h.started.get('a2').promise]);
  assert.equal(h.started.has('a3'), false, 'the refused attempt never ran');
  // Both run on the node's one upload budget: what their uploads hold is counted together.
  assert.ok(contexts.every((ctx) => ctx.uploadBudget === h.uploadBudget));
  h.gates.get('a1').resolve(copyResult);
  h.gates.get('a2').resolve(copyResult);
  await Promise.all([h.completed.get('a1').promise, h.completed.get('a2').promise]);
});

test('finishing one attempt frees its slot: after its completion is reported a new accept succeeds', async () => {
  const h = harness(2);
  h.worker.accept(dispatch('a1'), true);
  h.worker.accept(dispatch('a2'), true);
  await h.started.get('a1').promise;
  throwsCode(() => h.worker.accept(dispatch('a3'), true), 'capacity');

  h.gates.get('a1').resolve(copyResult);
  const c = await h.completed.get('a1').promise;
  assert.deepEqual(c, { outcome: 'succeeded', result: copyResult });
  assert.equal(h.worker.runningCount, 1);
  assert.deepEqual(h.worker.accept(dispatch('a3'), true), { accepted: true });
  assert.deepEqual(h.worker.runningIds().sort(), ['a2', 'a3']);
  throwsCode(() => h.worker.accept(dispatch('a4'), true), 'capacity');
  assert.ok(h.progress.includes('a1'), 'the attempt was marked running at the service before it ran');

  h.gates.get('a2').resolve(copyResult);
  h.gates.get('a3').resolve(copyResult);
  await Promise.all([h.completed.get('a2').promise, h.completed.get('a3').promise]);
  assert.equal(h.worker.runningCount, 0);
  assert.deepEqual(h.completes.map((x) => x.id).sort(), ['a1', 'a2', 'a3']);
});

test('raising the limit live lets more attempts run at once', async () => {
  const h = harness(2);
  h.worker.accept(dispatch('a1'), true);
  h.worker.accept(dispatch('a2'), true);
  throwsCode(() => h.worker.accept(dispatch('a3'), true), 'capacity');
  h.worker.limit = 4;
  h.worker.accept(dispatch('a3'), true);
  h.worker.accept(dispatch('a4'), true);
  assert.equal(h.worker.runningCount, 4);
  throwsCode(() => h.worker.accept(dispatch('a5'), true), 'capacity');
  await Promise.all(['a1', 'a2', 'a3', 'a4'].map((id) => h.started.get(id).promise));
  // Lowering it below what runs stops nothing, but takes nothing new until it is under again.
  h.worker.limit = 1;
  throwsCode(() => h.worker.accept(dispatch('a5'), true), 'capacity');
  assert.equal(h.worker.runningCount, 4);
  for (const id of ['a1', 'a2', 'a3', 'a4']) h.gates.get(id).resolve(copyResult);
  await Promise.all(['a1', 'a2', 'a3', 'a4'].map((id) => h.completed.get(id).promise));
  h.worker.accept(dispatch('a5'), true);
  h.gates.get('a5').resolve(copyResult);
  await h.completed.get('a5').promise;
});

test('a draining worker refuses new work with draining and keeps running what it has', async () => {
  const h = harness(2);
  h.worker.accept(dispatch('a1'), true);
  await h.started.get('a1').promise;
  h.worker.draining = true;
  throwsCode(() => h.worker.accept(dispatch('a2'), true), 'draining');
  assert.equal(h.worker.runningCount, 1);
  assert.equal(h.started.has('a2'), false);
  h.gates.get('a1').resolve(copyResult);
  assert.equal((await h.completed.get('a1').promise).outcome, 'succeeded');
  throwsCode(() => h.worker.accept(dispatch('a3'), true), 'draining');
  h.worker.draining = false;
  h.worker.accept(dispatch('a3'), true);
  h.gates.get('a3').resolve(copyResult);
  await h.completed.get('a3').promise;
});

test('a dispatch the service does not vouch for is refused and never raises the epoch', async () => {
  const h = harness(2);
  h.worker.observeEpoch(5);
  throwsCode(() => h.worker.accept(dispatch('forged', 2147483647), false), 'unauthorized');
  throwsCode(() => h.worker.accept(dispatch('unnamed', 5), false), 'unauthorized');
  assert.equal(h.worker.runningCount, 0);
  // The forged epoch did not raise the floor: the real dispatcher's next dispatch is taken.
  assert.deepEqual(h.worker.accept(dispatch('real', 5), true), { accepted: true });
  assert.equal(h.started.has('forged'), false);
  h.gates.get('real').resolve(copyResult);
  await h.completed.get('real').promise;
});

test('a dispatch from an epoch older than the one observed is refused with stale_epoch', async () => {
  const h = harness(2);
  h.worker.observeEpoch(5);
  throwsCode(() => h.worker.accept(dispatch('old', 4), true), 'stale_epoch');
  assert.equal(h.worker.runningCount, 0);
  h.worker.accept(dispatch('cur', 5), true);
  // A dispatch from a newer epoch is taken and raises the floor for everyone after it.
  h.worker.accept(dispatch('new', 6), true);
  h.worker.limit = 3;
  throwsCode(() => h.worker.accept(dispatch('late', 5), true), 'stale_epoch');
  // observeEpoch never lowers the floor.
  h.worker.observeEpoch(2);
  throwsCode(() => h.worker.accept(dispatch('late', 5), true), 'stale_epoch');
  assert.equal(h.started.has('old'), false);
  assert.equal(h.started.has('late'), false);
  for (const id of ['cur', 'new']) h.gates.get(id).resolve(copyResult);
  await Promise.all(['cur', 'new'].map((id) => h.completed.get(id).promise));
});

test('revoke aborts the attempt and nothing is reported for it', async () => {
  const h = harness(2);
  h.worker.accept(dispatch('victim'), true);
  h.worker.accept(dispatch('other'), true);
  const ctx = await h.started.get('victim').promise;
  assert.equal(ctx.signal.aborted, false);

  h.worker.revoke(['victim', 'not-mine']);
  assert.equal(ctx.signal.aborted, true);
  assert.ok(ctx.signal.reason instanceof FerryError);
  assert.equal(ctx.signal.reason.code, 'lease_lost');
  // The execution ended (its gate rejected on abort); the slot is freed.
  await assert.rejects(h.gates.get('victim').promise);

  // 'other' runs to completion after the revoke: by the time its outcome lands, a report for the
  // revoked attempt (sent synchronously as its run ended) would have landed first.
  h.gates.get('other').resolve(copyResult);
  await h.completed.get('other').promise;
  assert.equal(h.worker.runningCount, 0);
  assert.deepEqual(
    h.completes.map((x) => x.id),
    ['other'],
  );
  assert.deepEqual(h.releases, []);
});

test('a failed execution is reported as failed with the error code and its retryable flag', async () => {
  const h = harness(2);
  h.worker.accept(dispatch('flaky'), true);
  h.worker.accept(dispatch('denied'), true);
  await Promise.all([h.started.get('flaky').promise, h.started.get('denied').promise]);
  h.gates.get('flaky').reject(new FerryError('store_unreachable', 'store down'));
  h.gates.get('denied').reject(new FerryError('store_auth', 'password rejected', { retryable: false }));
  assert.deepEqual(await h.completed.get('flaky').promise, {
    outcome: 'failed',
    error: { code: 'store_unreachable', message: 'store down', retryable: true },
  });
  assert.deepEqual(await h.completed.get('denied').promise, {
    outcome: 'failed',
    error: { code: 'store_auth', message: 'password rejected', retryable: false },
  });
  // Something thrown that is not a FerryError becomes internal (retryable).
  h.worker.accept(dispatch('bug'), true);
  await h.started.get('bug').promise;
  h.gates.get('bug').reject(new TypeError('oops'));
  const bug = await h.completed.get('bug').promise;
  assert.equal(bug.outcome, 'failed');
  assert.ok(bug.outcome === 'failed' && bug.error.code === 'internal' && bug.error.retryable);
  assert.equal(h.worker.runningCount, 0);
});

test('drain(grace) waits for running attempts to finish; nothing is handed back', async () => {
  const h = harness(2);
  h.worker.accept(dispatch('a1'), true);
  h.worker.accept(dispatch('a2'), true);
  await Promise.all([h.started.get('a1').promise, h.started.get('a2').promise]);
  let drained = false;
  const drain = h.worker.drain(60_000).then(() => (drained = true));
  assert.equal(h.worker.draining, true);
  throwsCode(() => h.worker.accept(dispatch('a3'), true), 'draining');

  h.gates.get('a1').resolve(copyResult);
  await h.completed.get('a1').promise;
  assert.equal(drained, false, 'drain still waits for a2');
  h.gates.get('a2').resolve(copyResult);
  await drain;
  assert.equal(h.worker.runningCount, 0);
  assert.deepEqual(
    h.completes.map((x) => x.c.outcome),
    ['succeeded', 'succeeded'],
  );
  assert.deepEqual(h.releases, []);
});

test('drain(grace) past the grace aborts what still runs and releases it to the service', async () => {
  const h = harness(3);
  h.worker.accept(dispatch('quick'), true);
  h.worker.accept(dispatch('slow1'), true);
  h.worker.accept(dispatch('slow2'), true);
  const contexts = await Promise.all(['quick', 'slow1', 'slow2'].map((id) => h.started.get(id).promise));
  h.gates.get('quick').resolve(copyResult);
  await h.completed.get('quick').promise;

  await h.worker.drain(50); // slow1 and slow2 never open their gates
  assert.deepEqual(
    contexts.map((c) => c.signal.aborted),
    [false, true, true],
  );
  const reason: unknown = contexts[1]?.signal.reason;
  assert.ok(reason instanceof FerryError && reason.code === 'cancelled');
  assert.deepEqual(h.releases.map((r) => r.id).sort(), ['slow1', 'slow2']);
  for (const r of h.releases) assert.match(r.reason, /shut down/);
  assert.deepEqual(
    h.completes.map((x) => x.id),
    ['quick'],
    'a handed-back attempt reports no outcome',
  );
  assert.equal(h.worker.runningCount, 0);
  assert.ok(h.changes() >= 6, 'every start and end was signalled');
});

test('sealed secrets are opened for the attempt they were sealed for, and only then does it run', async () => {
  const keys = generateNodeKeys();
  const credentials = new CredentialStore(mkdtempSync(join(tmpdir(), 'ferry-creds-')));
  const h = harness(2, secretOpener({ sealPrivateKey: keys.sealPrivateKey, credentials }));
  const marker = 'pw-marker-5a7d9e';
  const withBox = (id: string, sealedFor: string): DispatchRequestT => {
    const d = dispatch(id);
    d.attempt.spec.source.sealedSecrets = sealSecrets(
      keys.sealPublicKey,
      { password: marker },
      sealedFor,
      'source',
    );
    return d;
  };
  const sealed = withBox('s1', 's1');
  h.worker.accept(sealed, true);
  await h.started.get('s1').promise;
  const ran = h.executed.get('s1');
  assert.equal(ran?.spec.source.properties['password'], marker, 'the connector gets the secret');
  assert.equal(ran.spec.source.sealedSecrets, undefined);
  // The task runs as the attempt it was assigned as; only its spec's secrets differ.
  assert.deepEqual(
    [ran.attemptId, ran.taskId, ran.spec.work, ran.spec.sink],
    [sealed.attempt.attemptId, sealed.attempt.taskId, sealed.attempt.spec.work, sealed.attempt.spec.sink],
  );
  h.gates.get('s1').resolve(copyResult);
  await h.completed.get('s1').promise;

  // A box taken from another attempt does not open here: the attempt fails, retryable, saying why
  // without the secret, and its task never ran.
  h.worker.accept(withBox('s2', 's1'), true);
  const c = await h.completed.get('s2').promise;
  assert.equal(c.outcome, 'failed');
  assert.ok(c.outcome === 'failed');
  assert.equal(c.error.retryable, true);
  assert.match(c.error.message, /the source's secrets cannot be opened on this node/);
  assert.equal(JSON.stringify(c).includes(marker), false);
  assert.equal(h.started.has('s2'), false);
});

test('gateway-held credentials come from the own credential set of the node, and only at the version the task needs', async () => {
  const keys = generateNodeKeys();
  const credentials = new CredentialStore(mkdtempSync(join(tmpdir(), 'ferry-creds-')));
  const h = harness(2, secretOpener({ sealPrivateKey: keys.sealPrivateKey, credentials }));
  const marker = 'pw-marker-gw-71c3';
  const needing = (id: string, version: number): DispatchRequestT => {
    const d = dispatch(id);
    d.attempt.spec.source.credentials = { version };
    return d;
  };
  // The endpoint the values are set for: the source of every dispatch here.
  const endpoint = {
    type: dispatch('x').attempt.spec.source.type,
    properties: dispatch('x').attempt.spec.source.properties,
  };
  const bound = (password: string) => ({ values: { password }, endpoint });
  credentials.put('src', 1, bound('old-' + marker));
  // Behind: the attempt fails, retryable, naming the versions and not the values; its task never ran.
  h.worker.accept(needing('g1', 2), true);
  const c = await h.completed.get('g1').promise;
  assert.ok(c.outcome === 'failed');
  assert.equal(c.error.retryable, true);
  assert.match(
    c.error.message,
    /holds version 1 of the credentials of linked service "src"; the task needs version 2/,
  );
  assert.equal(JSON.stringify(c).includes(marker), false);
  assert.equal(h.started.has('g1'), false);
  // Caught up (and an older version replayed afterwards changes nothing): it runs with version 2.
  assert.equal(credentials.put('src', 2, bound(marker)), true);
  assert.equal(credentials.put('src', 1, bound('old-' + marker)), false);
  h.worker.accept(needing('g2', 2), true);
  await h.started.get('g2').promise;
  const ran = h.executed.get('g2');
  assert.equal(ran?.spec.source.properties['password'], marker);
  assert.equal(ran.spec.source.credentials, undefined);
  h.gates.get('g2').resolve(copyResult);
  await h.completed.get('g2').promise;
  // The linked service pointed elsewhere since (another host): refused, not retried, and not run.
  const moved = needing('g3', 2);
  moved.attempt.spec.source.properties = { ...moved.attempt.spec.source.properties, host: 'evil.example' };
  h.worker.accept(moved, true);
  const m = await h.completed.get('g3').promise;
  assert.ok(m.outcome === 'failed');
  assert.equal(m.error.retryable, false);
  assert.match(m.error.message, /linked service "src" has changed \(host\) since its credentials were set/);
  assert.equal(JSON.stringify(m).includes(marker), false);
  assert.equal(h.started.has('g3'), false);
});

/** A worker whose every task only passes its pre-commit fence, against a service that may be away. */
function fencedHarness(progress: (id: string) => Promise<void>, commitPatienceMs = 200) {
  const completed = new Signals<CompleteRequestT>();
  const worker = new Worker({
    service: {
      progress,
      complete: async (id, c) => completed.get(id).resolve(c),
      release: async () => undefined,
    },
    execute: async (_spec, _ctx, hooks) => {
      await hooks.beforeCommit();
      return copyResult;
    },
    openSecrets: (spec) => spec,
    allowedRoots: [],
    uploadBudget: new UploadBudget(),
    log: pino({ level: 'silent' }),
    progressIntervalMs: 60_000,
    commitPatienceMs,
  });
  return { worker, completed };
}

test('before its commit, an attempt waits for an unreachable service while its lease holds, then commits', async () => {
  let calls = 0;
  const h = fencedHarness(async () => {
    calls++;
    // The start report and the first two pre-commit checks find the service away.
    if (calls <= 3) throw new FerryError('unavailable', 'service http://svc: connection refused');
  });
  h.worker.accept(dispatch('a1'), true);
  const c = await h.completed.get('a1').promise;
  assert.deepEqual(c, { outcome: 'succeeded', result: copyResult });
  assert.equal(calls, 4);
});

test('an attempt gives up waiting for the service once its lease has lapsed and its patience run out, and says why', async () => {
  const h = fencedHarness(async () => {
    throw new FerryError('unavailable', 'service http://svc: connection refused');
  });
  h.worker.accept({ epoch: 1, attempt: { ...attempt('a1'), leaseMs: 300 } }, true);
  const c = await h.completed.get('a1').promise;
  assert.equal(c.outcome, 'failed');
  assert.ok(c.outcome === 'failed' && c.error.code === 'unavailable' && c.error.retryable);
  assert.match(
    c.outcome === 'failed' ? c.error.message : '',
    /until the lease lapsed and 0 s more.*connection refused/,
  );
});

test('an attempt waits past its own lease for a service that comes back (which extends the leases it finds), then commits', async () => {
  const back = Date.now() + 1_000;
  const h = fencedHarness(async () => {
    if (Date.now() < back) throw new FerryError('unavailable', 'service http://svc: connection refused');
  }, 5_000);
  h.worker.accept({ epoch: 1, attempt: { ...attempt('a1'), leaseMs: 300 } }, true);
  const c = await h.completed.get('a1').promise;
  assert.deepEqual(c, { outcome: 'succeeded', result: copyResult });
});

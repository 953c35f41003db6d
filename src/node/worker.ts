/**
 * The worker half of every node: accepts attempts from the dispatcher (never more than its limit,
 * none while draining, none from a stale epoch), runs them, renews their leases with progress
 * reports and reports the outcome straight to the service, so losing the dispatcher loses nothing.
 *
 * Attempt on this node: accepted -> running -> reported (succeeded | failed)
 *                                     |-> revoked (the service gave the task to another node): aborted, nothing reported
 *                                     '-> handed back (shutdown after the drain grace): released to the service
 */
import { setTimeout as sleep } from 'node:timers/promises';
import type { AssignedAttemptT, CompleteRequestT } from '../protocol/agent.ts';
import type { DispatchRequestT } from '../protocol/peer.ts';
import type { TaskResultT } from '../protocol/task.ts';
import type { UploadBudget } from '../common/upload-budget.ts';
import { FerryError, toFerryError } from '../common/errors.ts';
import type { Logger } from '../common/logger.ts';
import type { ExecutionHooks, NodeContext, TaskAttempt } from './task-executor.ts';

/** How long an outcome is retried while the service is unreachable. */
const REPORT_PATIENCE_MS = 10 * 60_000;
/**
 * How long past its own lease an attempt about to commit keeps waiting for an unreachable service. A
 * restarted service extends the leases it finds, so the attempt is usually still the task's; if it is
 * not, the service refuses the commit: waiting longer costs time, never a duplicate.
 */
const COMMIT_PATIENCE_MS = 60_000;

/** An attempt's lease when the service does not say (services before AssignedAttempt.leaseMs). */
const DEFAULT_LEASE_MS = 10_000;

export interface WorkerDeps {
  service: {
    progress(attemptId: string, p: { rows: number; bytes: number }): Promise<void>;
    complete(attemptId: string, c: CompleteRequestT): Promise<void>;
    release(attemptId: string, reason: string): Promise<void>;
  };
  /** Runs the attempt (task-executor.ts). */
  execute(attempt: TaskAttempt, node: NodeContext, hooks: ExecutionHooks): Promise<TaskResultT>;
  /** The spec with its sealed secrets opened (task-secrets.ts): only what execute() gets. */
  openSecrets(spec: AssignedAttemptT['spec'], attemptId: string): AssignedAttemptT['spec'];
  allowedRoots: readonly string[];
  /** The node's one budget for object-store uploads, handed to every attempt (AttemptContext). */
  uploadBudget: UploadBudget;
  log: Logger;
  progressIntervalMs: number;
  /** How long past its lease an attempt waits for the service before its commit (default 60 s). */
  commitPatienceMs?: number;
}

interface Running {
  attempt: AssignedAttemptT;
  controller: AbortController;
  rows: number;
  bytes: number;
  /** Why it was stopped from outside: revoked by the service, or handed back at shutdown. */
  stopped: 'revoked' | 'handed_back' | undefined;
  /**
   * When its lease lapses as this node knows it (this clock): the last renewal sent that the service
   * took, plus the lease. Until then the service cannot have given the task to anyone else.
   */
  leaseUntil: number;
  done: Promise<void>;
}

export class Worker {
  readonly #deps: WorkerDeps;
  readonly #running = new Map<string, Running>();
  readonly #changeListeners: (() => void)[] = [];
  #limit = 1;
  #epoch = 0;
  #draining = false;

  constructor(deps: WorkerDeps) {
    this.#deps = deps;
  }

  get limit(): number {
    return this.#limit;
  }
  set limit(n: number) {
    this.#limit = n;
  }
  get draining(): boolean {
    return this.#draining;
  }
  set draining(d: boolean) {
    this.#draining = d;
  }
  get runningCount(): number {
    return this.#running.size;
  }
  runningIds(): string[] {
    return [...this.#running.keys()];
  }

  /** Calls `listener` whenever the number of running attempts changes (a slot taken or freed). */
  onChange(listener: () => void): void {
    this.#changeListeners.push(listener);
  }

  #changed(): void {
    for (const listener of this.#changeListeners) listener();
  }

  /** The newest dispatcher epoch this node has heard of. */
  get epoch(): number {
    return this.#epoch;
  }

  /** The newest dispatcher epoch this node has heard of; dispatches from older epochs are refused. */
  observeEpoch(epoch: number): void {
    if (epoch > this.#epoch) this.#epoch = epoch;
  }

  /**
   * Takes a dispatch. `vouched`: the service names the sender dispatcher under `req.epoch` (its lease
   * token checked, or the sender is this node, made dispatcher by its own heartbeat). Only then may a
   * dispatch raise the epoch: a peer's word alone never does, so a forged high epoch fences nobody out.
   */
  accept(req: DispatchRequestT, vouched: boolean): { accepted: true } {
    const { attempt } = req;
    if (req.epoch < this.#epoch) {
      throw new FerryError(
        'stale_epoch',
        `dispatch from epoch ${req.epoch} refused: the current dispatcher epoch is ${this.#epoch}`,
      );
    }
    if (!vouched) {
      throw new FerryError(
        'unauthorized',
        `dispatch under epoch ${req.epoch} refused: the service does not name the sender dispatcher under that epoch`,
      );
    }
    this.observeEpoch(req.epoch);
    if (this.#running.has(attempt.attemptId)) return { accepted: true };
    if (this.#draining) throw new FerryError('draining', 'this node is draining and takes no new tasks');
    if (this.#running.size >= this.#limit) {
      throw new FerryError(
        'capacity',
        `this node runs ${this.#running.size} tasks, its limit is ${this.#limit}`,
      );
    }
    const entry: Running = {
      attempt,
      controller: new AbortController(),
      rows: 0,
      bytes: 0,
      stopped: undefined,
      leaseUntil: Date.now() + (attempt.leaseMs ?? DEFAULT_LEASE_MS),
      done: Promise.resolve(),
    };
    this.#running.set(attempt.attemptId, entry);
    entry.done = this.#run(entry);
    this.#changed();
    return { accepted: true };
  }

  /** The service says these attempts are no longer ours: stop them, report nothing. */
  revoke(ids: readonly string[]): void {
    for (const id of ids) {
      const r = this.#running.get(id);
      if (r && !r.stopped) {
        r.stopped = 'revoked';
        r.controller.abort(new FerryError('lease_lost', 'the service gave this task to another node'));
      }
    }
  }

  /** Waits for running attempts up to `graceMs`, then hands the rest back to the service. */
  async drain(graceMs: number): Promise<void> {
    this.#draining = true;
    await waitAtMost(Promise.all([...this.#running.values()].map((r) => r.done)), graceMs);
    for (const r of this.#running.values()) {
      if (!r.stopped) {
        r.stopped = 'handed_back';
        r.controller.abort(new FerryError('cancelled', 'the node is shutting down'));
      }
    }
    // Handing back needs the service; if it is away, its lease expiry requeues the task instead.
    await waitAtMost(Promise.all([...this.#running.values()].map((r) => r.done)), 5000);
  }

  async #run(entry: Running): Promise<void> {
    const { attempt, controller } = entry;
    const id = attempt.attemptId;
    const log = this.#deps.log.child({ attempt: id, task: attempt.taskId });
    const leaseMs = attempt.leaseMs ?? DEFAULT_LEASE_MS;
    let failing = false;
    const renew = async (): Promise<void> => {
      const sentAt = Date.now();
      try {
        await this.#deps.service.progress(id, { rows: entry.rows, bytes: entry.bytes });
        entry.leaseUntil = Math.max(entry.leaseUntil, sentAt + leaseMs);
        failing = false;
      } catch (err) {
        const fe = toFerryError(err);
        if (fe.code === 'lease_lost' || fe.code === 'not_found') this.revoke([id]);
        else throw fe;
      }
    };
    const timer = setInterval(() => {
      renew().catch((err: unknown) => {
        // Once per outage, not every interval: the next renewal tries again.
        if (!failing) log.warn({ err: toFerryError(err).message }, 'progress report failed');
        failing = true;
      });
    }, this.#deps.progressIntervalMs);
    let outcome: CompleteRequestT | undefined;
    try {
      // Marks the attempt running at the service, in parallel with the work: the commit is fenced by
      // its own renewal (beforeCommit), so waiting here would only add a round trip to every task.
      renew().catch((err: unknown) => log.warn({ err: toFerryError(err).message }, 'start report failed'));
      const result = await this.#deps.execute(
        { ...attempt, spec: this.#deps.openSecrets(attempt.spec, id) },
        {
          signal: controller.signal,
          allowedRoots: this.#deps.allowedRoots,
          uploadBudget: this.#deps.uploadBudget,
        },
        {
          onProgress: (rows, bytes) => {
            entry.rows = rows;
            entry.bytes = bytes;
          },
          beforeCommit: async () => {
            await this.#confirmLease(entry, renew, log);
            if (controller.signal.aborted)
              throw new FerryError('lease_lost', 'the attempt lost its lease before commit');
          },
        },
      );
      outcome = { outcome: 'succeeded', result };
    } catch (err) {
      const fe = toFerryError(err);
      if (entry.stopped === undefined) {
        outcome = {
          outcome: 'failed',
          error: { code: fe.code, message: fe.message, retryable: fe.retryable },
        };
        log.warn({ err: fe.message }, 'attempt failed');
      }
    } finally {
      clearInterval(timer);
      // The slot is free once the work is done; reporting may take longer if the service is away.
      this.#running.delete(id);
      this.#changed();
    }
    if (outcome) await this.#report(id, outcome, log);
    else if (entry.stopped === 'handed_back')
      await this.#deps.service
        .release(id, 'the node shut down before the task finished')
        .catch(() => undefined);
  }

  /**
   * The fence before a commit: a renewal the service takes. While the service cannot be reached (it
   * is restarting, its store is failing over) the attempt waits and tries again, as long as its lease
   * holds and COMMIT_PATIENCE_MS more: a restarted service extends the leases it finds, and one that
   * gave the task away refuses the renewal. Past that, or on an answer that will not change, it
   * gives up.
   */
  async #confirmLease(entry: Running, renew: () => Promise<void>, log: Logger): Promise<void> {
    const signal = entry.controller.signal;
    let waited = false;
    for (let delay = 200; ; delay = Math.min(delay * 2, 2000)) {
      try {
        await renew();
        if (waited) log.info('the service is back: the lease is confirmed, committing');
        return;
      } catch (err) {
        const fe = toFerryError(err);
        if (!fe.retryable || signal.aborted) throw fe;
        const patience = this.#deps.commitPatienceMs ?? COMMIT_PATIENCE_MS;
        const left = entry.leaseUntil + patience - Date.now();
        if (left <= 0) {
          throw new FerryError(
            'unavailable',
            `could not confirm the lease before commit: the service did not answer until the lease lapsed and ${Math.round(patience / 1000)} s more (${fe.message})`,
            { cause: fe },
          );
        }
        if (!waited)
          log.warn(
            { err: fe.message, waitMs: left },
            'cannot confirm the lease before commit; waiting for the service',
          );
        waited = true;
        await sleep(Math.min(delay, left), undefined, { signal }).catch(() => undefined);
        if (signal.aborted) throw toFerryError(signal.reason);
      }
    }
  }

  /** Reports an outcome, retrying while the service is unreachable (its restart loses nothing). */
  async #report(id: string, outcome: CompleteRequestT, log: Logger): Promise<void> {
    const giveUpAt = Date.now() + REPORT_PATIENCE_MS;
    for (let delay = 200; Date.now() < giveUpAt; delay = Math.min(delay * 2, 5000)) {
      try {
        await this.#deps.service.complete(id, outcome);
        return;
      } catch (err) {
        const fe = toFerryError(err);
        if (!fe.retryable) {
          log.warn({ err: fe.message }, 'outcome refused by the service');
          return;
        }
        await sleep(delay);
      }
    }
    log.error('gave up reporting the outcome; the service will run the task again when the lease lapses');
  }
}

/** Waits for `p` or `ms`, whichever is first, and disarms the timer (a pending one would keep the process alive). */
async function waitAtMost(p: Promise<unknown>, ms: number): Promise<void> {
  const timer = new AbortController();
  try {
    await Promise.race([p, sleep(ms, undefined, { signal: timer.signal })]);
  } finally {
    timer.abort();
  }
}

/**
 * The sweep: every sweepIntervalMs, declare lost the attempts whose lease lapsed or whose node went
 * Offline, then run each gateway's dispatcher election. With several service replicas on PostgreSQL
 * only the replica holding the advisory lock sweeps (duties that must run once, DESIGN.md section 3);
 * the lock is per sweep, so another replica takes over at once when this one stops.
 *
 * When the store fails (PostgreSQL restarting or failing over), a sweep fails: the next ones are
 * tried with a growing backoff (a new connection each, so the lock is taken again once the store is
 * back). A sweep whose lock connection is cut stops at its next step: PostgreSQL has let the lock go
 * and another replica may be sweeping. The first sweep after an outage of a heartbeat or more grants
 * the same grace as a service restart (leases extended, nobody judged for one offline period): nodes
 * could not heartbeat or report while the store was away.
 *
 * The sweep also writes the metrics history (src/service/metrics-history.ts), after the elections:
 * a failure there is logged and does not hold up the next sweep's duties.
 */
import { setTimeout as sleep } from 'node:timers/promises';
import type { ServiceContext } from '../context.ts';
import { expireAttempts } from '../store/queries/expire-attempts.ts';
import { electDispatcher } from '../store/queries/apply-election.ts';
import { listGatewayIds } from '../store/queries/gateways.ts';
import { extendLeases } from '../store/queries/extend-leases.ts';
import { toServiceError } from '../store/store-errors.ts';
import type { SchedulerTimings } from './timings.ts';
import { MetricsHistory } from '../metrics-history.ts';

const SWEEP_LOCK_KEY = 0x46_45_52_52; // "FERR"

/** The longest wait between sweeps while the store fails. */
const MAX_BACKOFF_MS = 2000;

export class Scheduler {
  readonly #ctx: ServiceContext;
  readonly #stop = new AbortController();
  #loop: Promise<void> | undefined;
  /** Since when sweeps fail because the store is unavailable (undefined: they do not). */
  #failingSince: number | undefined;
  /** When the last grace after a store outage began. */
  #graceFrom = Number.NEGATIVE_INFINITY;
  /** ctx.timings, with elections also held off during a grace after a store outage. */
  readonly #timings: SchedulerTimings;
  readonly #history: MetricsHistory;
  #historyFailures = 0;

  constructor(ctx: ServiceContext) {
    this.#ctx = ctx;
    this.#history = new MetricsHistory(
      ctx.store.db,
      ctx.timings,
      {
        sampleRetentionMs: ctx.options.metricsRetentionHours * 3_600_000,
        averageRetentionMs: ctx.options.metricsAverageRetentionDays * 86_400_000,
      },
      ctx.log,
    );
    this.#timings = {
      ...ctx.timings,
      electionsEnabled: (now) =>
        ctx.timings.electionsEnabled(now) && now - this.#graceFrom >= ctx.timings.offlineAfterMs,
    };
  }

  start(): void {
    this.#loop = this.#run();
  }

  async stop(): Promise<void> {
    this.#stop.abort();
    await this.#loop;
  }

  async #run(): Promise<void> {
    const { log, options } = this.#ctx;
    let failures = 0;
    while (!this.#stop.signal.aborted) {
      try {
        await this.sweep();
        if (failures > 0) log.info({ failures }, 'sweeping again');
        failures = 0;
      } catch (err) {
        failures++;
        const fe = toServiceError(err);
        if (fe.code === 'unavailable') this.#failingSince ??= this.#ctx.now();
        if (failures === 1 || failures % 20 === 0)
          log.warn({ err: fe.message, failures }, 'sweep failed; retrying with backoff');
      }
      const wait =
        failures === 0
          ? options.sweepIntervalMs
          : Math.min(
              options.sweepIntervalMs * 2 ** failures,
              Math.max(MAX_BACKOFF_MS, options.sweepIntervalMs),
            );
      await sleep(wait, undefined, { signal: this.#stop.signal }).catch(() => undefined);
    }
  }

  /** One pass. Returns false when another replica holds the sweep lock. */
  async sweep(): Promise<boolean> {
    return this.#ctx.store.tryLocked(SWEEP_LOCK_KEY, async (lost) => {
      if (this.#failingSince !== undefined) await this.#afterOutage(this.#failingSince);
      await this.#sweepOnce(lost);
    });
  }

  /**
   * The store answers again. An outage long enough to have cost a heartbeat gets the grace; a
   * connection cut and at once replaced (a failover's first moments) does not hold elections off.
   */
  async #afterOutage(since: number): Promise<void> {
    const now = this.#ctx.now();
    if (now - since >= this.#ctx.timings.heartbeatIntervalMs) {
      await extendLeases(this.#ctx.store.db, now, this.#ctx.options);
      this.#graceFrom = now;
      this.#ctx.log.info(
        { outageMs: now - since, graceMs: this.#ctx.timings.offlineAfterMs },
        'the store is back: leases extended, no node judged during the grace',
      );
    }
    this.#failingSince = undefined;
  }

  async #sweepOnce(lost: AbortSignal): Promise<void> {
    const { store } = this.#ctx;
    const timings = this.#timings;
    const now = this.#ctx.now();
    if (timings.electionsEnabled(now)) {
      lost.throwIfAborted();
      const expired = await expireAttempts(store.db, now, timings.offlineAfterMs);
      if (expired > 0) {
        for (const id of await listGatewayIds(store.db)) this.#ctx.notifier.notify(id);
      }
    }
    for (const id of await listGatewayIds(store.db)) {
      lost.throwIfAborted();
      if (await electDispatcher(store.db, id, now, timings)) this.#ctx.notifier.notify(id);
    }
    lost.throwIfAborted();
    try {
      await this.#history.tick(now);
      this.#historyFailures = 0;
    } catch (err) {
      if (this.#historyFailures++ % 30 === 0)
        this.#ctx.log.warn({ err: toServiceError(err).message }, 'metrics history not written');
    }
  }
}

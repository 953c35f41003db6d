/**
 * The sweep: every sweepIntervalMs, declare lost the attempts whose lease lapsed or whose node went
 * Offline, then run each gateway's dispatcher election. With several service replicas on PostgreSQL
 * only the replica holding the advisory lock sweeps (duties that must run once, DESIGN.md section 3);
 * the lock is per sweep, so another replica takes over at once when this one stops.
 */
import { sql } from 'kysely';
import type { ServiceContext } from '../context.ts';
import { expireAttempts } from '../store/queries/expire-attempts.ts';
import { applyElection } from '../store/queries/apply-election.ts';
import { buildGatewayState } from './gateway-state.ts';
import { toFerryError } from '../../common/errors.ts';

const SWEEP_LOCK_KEY = 0x46_45_52_52; // "FERR"

export class Scheduler {
  readonly #ctx: ServiceContext;
  #timer: NodeJS.Timeout | undefined;
  #running: Promise<void> | undefined;

  constructor(ctx: ServiceContext) {
    this.#ctx = ctx;
  }

  start(): void {
    this.#timer = setInterval(() => {
      if (this.#running) return;
      this.#running = this.sweep()
        .then(() => undefined)
        .catch((err: unknown) => this.#ctx.log.warn({ err: toFerryError(err).message }, 'sweep failed'))
        .finally(() => (this.#running = undefined));
    }, this.#ctx.options.sweepIntervalMs);
  }

  async stop(): Promise<void> {
    clearInterval(this.#timer);
    await this.#running;
  }

  /** One pass. Returns false when another replica holds the sweep lock. */
  async sweep(): Promise<boolean> {
    const { store } = this.#ctx;
    if (store.dialect !== 'postgres') {
      await this.#sweepOnce();
      return true;
    }
    // A session-level lock must be taken and released on the same connection: pin one.
    return store.db.connection().execute(async (conn) => {
      const got = await sql<{ ok: boolean }>`select pg_try_advisory_lock(${SWEEP_LOCK_KEY}) as ok`.execute(
        conn,
      );
      if (!got.rows[0]?.ok) return false;
      try {
        await this.#sweepOnce();
        return true;
      } finally {
        await sql`select pg_advisory_unlock(${SWEEP_LOCK_KEY})`.execute(conn);
      }
    });
  }

  async #sweepOnce(): Promise<void> {
    const { store, timings } = this.#ctx;
    const now = this.#ctx.now();
    if (timings.electionsEnabled(now)) {
      const lost = await expireAttempts(store.db, now, timings.offlineAfterMs);
      if (lost > 0) {
        this.#ctx.metrics.attemptsLost.inc(lost);
        for (const g of await store.db.selectFrom('gateways').select('id').execute())
          this.#ctx.notifier.notify(g.id);
      }
    }
    const gateways = await store.db.selectFrom('gateways').select('id').execute();
    for (const { id } of gateways) {
      const changed = await store.db.transaction().execute(async (tx) => {
        const gw = await tx.selectFrom('gateways').selectAll().where('id', '=', id).executeTakeFirst();
        if (!gw) return false;
        const rows = await tx.selectFrom('nodes').selectAll().where('gateway_id', '=', id).execute();
        return applyElection(tx, buildGatewayState(gw, rows, now, timings), now, timings);
      });
      if (changed) {
        this.#ctx.metrics.dispatcherChanges.inc();
        this.#ctx.notifier.notify(id);
      }
    }
  }
}

/**
 * The node's heartbeat: one call to the service every interval (each reply sets the next), for as
 * long as the node runs. The loop only sends; the parts of the node that care subscribe: to each
 * reply (membership, lease key, limit, drain, epoch, role...), to each missed beat, and to losing
 * the service.
 *
 * The service as the loop sees it:
 *   answering -> missed (a beat failed; the next one is tried an interval later)
 *             -> lost (LOST_AFTER beats missed in a row: what the node last heard may be stale, so
 *                it must not act on it, e.g. as dispatcher); any reply brings it back to answering
 *   refused (unauthorized: the service no longer knows this node) -> lost for good: the loop ends
 */
import { setTimeout as sleep } from 'node:timers/promises';
import { toFerryError, type FerryError } from '../common/errors.ts';
import type { Logger } from '../common/logger.ts';

/** Beats missed in a row after which the service counts as lost. */
export const LOST_AFTER = 3;

export interface HeartbeatLoopDeps<R> {
  /** One heartbeat: sends what the node reports now; resolves with the service's reply. */
  send(): Promise<R>;
  /** The wait between beats until a reply sets it. */
  intervalMs: number;
  log: Logger;
}

/** Why the service is lost: `forGood` when it refused this node (the loop has ended). */
export interface LostService {
  error: FerryError;
  forGood: boolean;
}

export class HeartbeatLoop<R extends { heartbeatIntervalMs: number }> {
  readonly #deps: HeartbeatLoopDeps<R>;
  readonly #replyListeners: ((reply: R) => void | Promise<void>)[] = [];
  readonly #missedListeners: ((error: FerryError, inARow: number) => void)[] = [];
  readonly #lostListeners: ((lost: LostService) => void)[] = [];
  readonly #stopping = new AbortController();
  #intervalMs: number;
  #loop: Promise<void> | undefined;

  constructor(deps: HeartbeatLoopDeps<R>) {
    this.#deps = deps;
    this.#intervalMs = deps.intervalMs;
  }

  /**
   * Hears every reply, in the order of subscription; an async listener is awaited before the next
   * one (and the next beat). A listener that throws fails the beat.
   */
  onReply(listener: (reply: R) => void | Promise<void>): void {
    this.#replyListeners.push(listener);
  }

  /** Hears every beat of the loop that failed and will be tried again, with how many in a row. */
  onMissed(listener: (error: FerryError, inARow: number) => void): void {
    this.#missedListeners.push(listener);
  }

  /** Hears the service lost: once per outage (at LOST_AFTER missed beats), or for good. */
  onLost(listener: (lost: LostService) => void): void {
    this.#lostListeners.push(listener);
  }

  /** Beats every interval from now until stop(), or until the service refuses this node. */
  start(): void {
    this.#loop ??= this.#run();
  }

  /**
   * One heartbeat now, apart from the loop's rhythm (a shutdown telling the service at once): its
   * reply goes to the reply listeners; a failure only to the caller.
   */
  async beat(): Promise<R> {
    const reply = await this.#deps.send();
    this.#intervalMs = reply.heartbeatIntervalMs;
    for (const listener of this.#replyListeners) await listener(reply);
    return reply;
  }

  /** No more beats from the loop; resolves once it has ended (after the beat in flight, if any). */
  async stop(): Promise<void> {
    this.#stopping.abort();
    await this.#loop;
  }

  async #run(): Promise<void> {
    const signal = this.#stopping.signal;
    const log = this.#deps.log;
    let missed = 0;
    while (!signal.aborted) {
      const started = Date.now();
      try {
        await this.beat();
        missed = 0;
      } catch (err) {
        const error = toFerryError(err);
        if (error.code === 'unauthorized') {
          log.error({ err: error.message }, 'the service no longer knows this node; stopping');
          for (const listener of this.#lostListeners) listener({ error, forGood: true });
          return;
        }
        missed++;
        if (missed === 1 || missed % 10 === 0)
          log.warn({ err: error.message, hint: error.hint }, 'heartbeat failed; retrying');
        for (const listener of this.#missedListeners) listener(error, missed);
        if (missed === LOST_AFTER)
          for (const listener of this.#lostListeners) listener({ error, forGood: false });
      }
      const wait = Math.max(0, this.#intervalMs - (Date.now() - started));
      await sleep(wait, undefined, { signal }).catch(() => undefined);
    }
  }
}

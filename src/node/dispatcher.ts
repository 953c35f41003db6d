/**
 * The dispatcher half, active only while the service says this node holds the dispatcher lease.
 * Loop: offer the eligible workers (itself included) to the service in a long-poll claim under the
 * current epoch; hand each claimed attempt to its worker over the node-to-node channel; give back to
 * the service any attempt a worker could not take. A `stale_epoch` answer ends the loop at once:
 * another node holds the role now.
 */
import type { AssignedAttemptT, ClaimRequestT, ClaimResponseT, PeerViewT } from '../protocol/agent.ts';
import type { DispatchRequestT } from '../protocol/peer.ts';
import { toFerryError } from '../common/errors.ts';
import type { Logger } from '../common/logger.ts';

export interface DispatcherDeps {
  selfId: string;
  claim(req: ClaimRequestT, signal: AbortSignal): Promise<ClaimResponseT>;
  release(attemptId: string, reason: string): Promise<void>;
  /** Hands an attempt to a worker: this node directly, others over the peer channel. */
  deliver(peer: PeerViewT | 'self', req: DispatchRequestT): Promise<void>;
  /** This node as a worker: may it take tasks, and at what limit. */
  self(): { eligible: boolean; limit: number };
  log: Logger;
  claimWaitMs: number;
}

export class Dispatcher {
  readonly #deps: DispatcherDeps;
  #epoch = 0;
  /** The service's lease token for this node under #epoch, forwarded in every dispatch. */
  #lease: string | undefined;
  #peers: PeerViewT[] = [];
  #loop: Promise<void> | undefined;
  #controller: AbortController | undefined;
  /** Resolves the idle wait when something changed (role, peers, capacity). */
  #wake: (() => void) | undefined;

  constructor(deps: DispatcherDeps) {
    this.#deps = deps;
  }

  get active(): boolean {
    return this.#loop !== undefined;
  }

  /** From each heartbeat: the role, the epoch, the workers and (for the dispatcher) its lease token. */
  update(role: 'dispatcher' | 'worker', epoch: number, peers: PeerViewT[], lease?: string): void {
    this.#peers = peers;
    if (role === 'dispatcher' && lease !== undefined && (!this.#loop || epoch === this.#epoch))
      this.#lease = lease;
    if (role === 'dispatcher' && (!this.#loop || epoch !== this.#epoch)) {
      if (this.#loop && epoch !== this.#epoch) this.stop();
      this.#epoch = epoch;
      this.#lease = lease;
      this.#deps.log.info({ epoch }, 'this node is the dispatcher');
      const controller = new AbortController();
      this.#controller = controller;
      const loop = this.#run(controller.signal).finally(() => {
        if (this.#loop === loop) this.#loop = undefined;
      });
      this.#loop = loop;
    } else if (role === 'worker' && this.#loop) {
      this.#deps.log.info({ epoch }, 'this node is no longer the dispatcher');
      this.stop();
    }
    this.poke();
  }

  poke(): void {
    this.#wake?.();
  }

  stop(): void {
    this.#controller?.abort();
    this.#loop = undefined;
    this.poke();
  }

  async #run(signal: AbortSignal): Promise<void> {
    const epoch = this.#epoch;
    let backoff = 100;
    while (!signal.aborted) {
      const self = this.#deps.self();
      const slots = [
        ...(self.eligible ? [{ nodeId: this.#deps.selfId, free: self.limit }] : []),
        ...this.#peers.filter((p) => p.eligible).map((p) => ({ nodeId: p.nodeId, free: p.limit })),
      ];
      if (slots.length === 0) {
        await this.#idle(1000, signal);
        continue;
      }
      let attempts: AssignedAttemptT[];
      try {
        attempts = (await this.#deps.claim({ epoch, slots, waitMs: this.#deps.claimWaitMs }, signal))
          .attempts;
        backoff = 100;
      } catch (err) {
        if (signal.aborted) return;
        const fe = toFerryError(err);
        if (fe.code === 'stale_epoch') {
          this.#deps.log.warn(
            { epoch, err: fe.message },
            'claim refused: this node no longer holds the dispatcher lease',
          );
          return;
        }
        this.#deps.log.warn({ err: fe.message }, 'claim failed; retrying');
        await this.#idle(backoff, signal);
        backoff = Math.min(backoff * 2, 2000);
        continue;
      }
      await Promise.all(attempts.map((a) => this.#hand(a, epoch)));
    }
  }

  async #hand(attempt: AssignedAttemptT, epoch: number): Promise<void> {
    const target =
      attempt.nodeId === this.#deps.selfId ? 'self' : this.#peers.find((p) => p.nodeId === attempt.nodeId);
    try {
      if (!target) throw new Error(`worker ${attempt.nodeId} is not among this gateway's nodes`);
      const lease = this.#epoch === epoch ? this.#lease : undefined;
      await this.#deps.deliver(target, { epoch, attempt, ...(lease === undefined ? {} : { lease }) });
    } catch (err) {
      const reason = `could not hand the task to ${target === 'self' ? 'this node' : (target?.name ?? attempt.nodeId)}: ${toFerryError(err).message}`;
      this.#deps.log.warn({ attempt: attempt.attemptId }, reason);
      await this.#deps.release(attempt.attemptId, reason).catch(() => undefined);
    }
  }

  #idle(ms: number, signal: AbortSignal): Promise<void> {
    return new Promise((resolve) => {
      const done = (): void => {
        clearTimeout(t);
        this.#wake = undefined;
        resolve();
      };
      const t = setTimeout(done, ms);
      this.#wake = done;
      signal.addEventListener('abort', done, { once: true });
    });
  }
}

/**
 * Wakes a dispatcher's long-poll claim when its gateway gets new work. In-process only: a claim
 * also re-checks the queue every `pollMs`, so with several service replicas (where the work may be
 * queued on another replica) a claim still sees it within that time.
 */
export class WorkNotifier {
  readonly #waiters = new Map<string, Set<() => void>>();

  notify(gatewayId: string): void {
    const set = this.#waiters.get(gatewayId);
    if (!set) return;
    this.#waiters.delete(gatewayId);
    for (const wake of set) wake();
  }

  /** Resolves on notify, after `ms`, or when the signal aborts, whichever is first. */
  wait(gatewayId: string, ms: number, signal?: AbortSignal): Promise<void> {
    return new Promise((resolve) => {
      let set = this.#waiters.get(gatewayId);
      if (!set) this.#waiters.set(gatewayId, (set = new Set()));
      const done = (): void => {
        clearTimeout(timer);
        set.delete(done);
        signal?.removeEventListener('abort', done);
        resolve();
      };
      const timer = setTimeout(done, ms);
      set.add(done);
      signal?.addEventListener('abort', done, { once: true });
    });
  }
}

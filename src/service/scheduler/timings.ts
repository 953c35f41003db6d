import type { CompiledServiceOptions } from '../service-options.ts';

/** The clock-related settings the scheduler and the agent API share. */
export interface SchedulerTimings {
  heartbeatIntervalMs: number;
  dispatcherLeaseMs: number;
  offlineAfterMs: number;
  attemptLeaseMs: number;
  /**
   * False during the start-up grace period: after a service restart every node looks silent until it
   * reconnects, so nobody is declared Offline, no attempt lost and no dispatcher replaced until the
   * nodes have had one offline timeout to come back.
   */
  electionsEnabled(now: number): boolean;
}

export function schedulerTimings(o: CompiledServiceOptions, startedAt: number): SchedulerTimings {
  return {
    heartbeatIntervalMs: o.heartbeatIntervalMs,
    dispatcherLeaseMs: o.dispatcherLeaseMs,
    offlineAfterMs: o.offlineAfterMs,
    attemptLeaseMs: o.attemptLeaseMs,
    electionsEnabled: (now) => now - startedAt >= o.offlineAfterMs,
  };
}

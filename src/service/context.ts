import type { Logger } from '../common/logger.ts';
import type { Store } from './store/database.ts';
import type { CompiledServiceOptions } from './service-options.ts';
import type { SchedulerTimings } from './scheduler/timings.ts';
import type { WorkNotifier } from './scheduler/work-notifier.ts';
import type { ServiceMetrics } from './service-metrics.ts';
import type { LeaseKey } from '../protocol/dispatcher-lease.ts';

/** What route handlers and the scheduler share. Built once in service.ts. */
export interface ServiceContext {
  store: Store;
  options: CompiledServiceOptions;
  timings: SchedulerTimings;
  /** 32-byte key sealing linked service secrets at rest. */
  masterKey: Buffer;
  /** Signs dispatcher lease tokens; derived from the master key (same on every replica). */
  leaseKey: LeaseKey;
  adminTokenHash: string;
  log: Logger;
  notifier: WorkNotifier;
  metrics: ServiceMetrics;
  now(): number;
}

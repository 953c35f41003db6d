/**
 * `ferry service`: opens the store, makes sure the admin token and master key exist, serves the API
 * and runs the scheduler. After a restart, leases are extended by one period so nodes can reconnect
 * before anyone is judged (nothing is lost because the service was away).
 */
import { chmodSync, existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { randomBytes } from 'node:crypto';
import { compileServiceOptions, type ServiceOptions } from './service-options.ts';
import { openStore } from './store/database.ts';
import { buildApp } from './app.ts';
import { Scheduler } from './scheduler/scheduler.ts';
import { schedulerTimings } from './scheduler/timings.ts';
import { WorkNotifier } from './scheduler/work-notifier.ts';
import { createServiceMetrics } from './service-metrics.ts';
import { createLogger } from '../common/logger.ts';
import { hashToken, randomToken } from '../common/crypto.ts';
import type { ServiceContext } from './context.ts';
import { ACTIVE_ATTEMPT } from './store/queries/active-attempts.ts';
import { deriveLeaseKey } from '../protocol/dispatcher-lease.ts';

export interface RunningService {
  url: string;
  port: number;
  /** Present when the token was generated or given: where it is kept. */
  adminTokenFile: string | undefined;
  adminToken: string;
  close(): Promise<void>;
}

/** Reads a secret file, or creates it with mode 0600. */
function fileSecret(path: string, make: () => string): string {
  if (existsSync(path)) return readFileSync(path, 'utf8').trim();
  const value = make();
  writeFileSync(path, `${value}\n`, { mode: 0o600 });
  chmodSync(path, 0o600);
  return value;
}

export async function startService(input: ServiceOptions): Promise<RunningService> {
  const options = compileServiceOptions(input);
  mkdirSync(options.dataDir, { recursive: true });
  const log = createLogger('ferry-service', options.logLevel);
  const tokenFile = join(options.dataDir, 'admin-token');
  const adminToken = options.adminToken ?? fileSecret(tokenFile, () => randomToken(24));
  const masterKey =
    options.masterKey ??
    Buffer.from(
      fileSecret(join(options.dataDir, 'master.key'), () => randomBytes(32).toString('base64')),
      'base64',
    );

  const store = await openStore({
    url: options.store,
    dataDir: options.dataDir,
    pgSchema: options.storeSchema,
  });
  const startedAt = Date.now();
  // Start-up grace: whatever lapsed while the service was away is extended, not judged.
  await store.db
    .updateTable('gateways')
    .set({ lease_until: startedAt + options.dispatcherLeaseMs })
    .where('dispatcher_node_id', 'is not', null)
    .execute();
  await store.db
    .updateTable('attempts')
    .set({ lease_until: startedAt + options.attemptLeaseMs })
    .where('status', 'in', ACTIVE_ATTEMPT)
    .where('lease_until', '<', startedAt + options.attemptLeaseMs)
    .execute();

  const ctx: ServiceContext = {
    store,
    options,
    timings: schedulerTimings(options, startedAt),
    masterKey,
    leaseKey: deriveLeaseKey(masterKey),
    adminTokenHash: hashToken(adminToken),
    log,
    notifier: new WorkNotifier(),
    metrics: createServiceMetrics(),
    now: () => Date.now(),
  };
  const app = await buildApp(ctx);
  const scheduler = new Scheduler(ctx);
  try {
    await app.listen({ port: options.port, host: options.host });
  } catch (err) {
    await store.close();
    throw err;
  }
  scheduler.start();
  const address = app.server.address();
  const port = typeof address === 'object' && address ? address.port : options.port;
  const host = options.host.includes(':') ? `[${options.host}]` : options.host;
  const url = `http://${host}:${port}`;
  log.info({ url, store: store.describe }, 'service listening');
  return {
    url,
    port,
    adminTokenFile: options.adminToken === undefined ? tokenFile : undefined,
    adminToken,
    close: async () => {
      await scheduler.stop();
      await app.close();
      await store.close();
    },
  };
}

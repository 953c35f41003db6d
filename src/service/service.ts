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
import { registerGatewayMetrics } from './gateway-metrics.ts';
import { createLogger } from '../common/logger.ts';
import { hashToken, randomToken } from '../common/crypto.ts';
import { readPemFile } from '../common/tls.ts';
import { FerryError } from '../common/errors.ts';
import type { ServiceContext } from './context.ts';
import { extendLeases } from './store/queries/extend-leases.ts';
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
  // Read before anything starts: a missing or unreadable file is reported, not a half-started service.
  const https = options.tls && {
    cert: readPemFile(options.tls.cert, '--tls-cert'),
    key: readPemFile(options.tls.key, '--tls-key'),
  };
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
  await extendLeases(store.db, startedAt, options);

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
  registerGatewayMetrics(ctx.metrics.registry, ctx, ctx.metrics.gatewayNames);
  let app: Awaited<ReturnType<typeof buildApp>>;
  try {
    app = await buildApp(ctx, https);
  } catch (err) {
    await store.close();
    // createSecureContext refuses a key that does not match the certificate, or a file it cannot parse.
    if (https && /key values mismatch|PEM|asn1|certificate|private key/i.test((err as Error).message)) {
      throw new FerryError(
        'bad_request',
        `--tls-cert ${options.tls?.cert} and --tls-key ${options.tls?.key} cannot be used: ${(err as Error).message}`,
        { cause: err },
      );
    }
    throw err;
  }
  const scheduler = new Scheduler(ctx);
  try {
    await app.listen({ port: options.port, host: options.host });
  } catch (err) {
    await store.close();
    throw listenProblem(err, options.port, options.host);
  }
  scheduler.start();
  const address = app.server.address();
  const port = typeof address === 'object' && address ? address.port : options.port;
  const host = options.host.includes(':') ? `[${options.host}]` : options.host;
  const url = `${https ? 'https' : 'http'}://${host}:${port}`;
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

/** A port or address the API cannot listen on, said with what to do about it. */
function listenProblem(err: unknown, port: number, host: string): unknown {
  const code = (err as NodeJS.ErrnoException).code;
  if (code === 'EADDRINUSE')
    return new FerryError('conflict', `API port ${port} is already in use on ${host}`, {
      hint: 'pick another --port (0 = any free port), or stop what listens there (another `ferry service` or `ferry up`?)',
      cause: err,
    });
  if (code === 'EADDRNOTAVAIL')
    return new FerryError('bad_request', `--host ${host} is not an address of this machine`, {
      hint: 'use one of its addresses, 127.0.0.1, or 0.0.0.0 for all of them',
      cause: err,
    });
  if (code === 'EACCES')
    return new FerryError('forbidden', `not allowed to listen on port ${port} of ${host}`, {
      hint: 'ports below 1024 need privileges: pick a port of 1024 or more with --port',
      cause: err,
    });
  return err;
}

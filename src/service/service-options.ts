import { resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Type, type Static } from 'typebox';
import { FerryError } from '../common/errors.ts';
import { validator } from '../protocol/validate.ts';

/** What `ferry service` accepts. Every field is optional; its default is in the doc comment. */
export const ServiceOptionsSchema = Type.Object(
  {
    /** Port for the API (and, later, the portal). Default 8050; 0 picks a free port. */
    port: Type.Optional(Type.Number()),
    /** Address to listen on. Default 127.0.0.1. */
    host: Type.Optional(Type.String()),
    /** Folder for the embedded store, the admin token and the master key. Default ./ferry-data. */
    dataDir: Type.Optional(Type.String()),
    /** `postgres://...` to use PostgreSQL instead of the embedded SQLite file. */
    store: Type.Optional(Type.String()),
    /** PostgreSQL schema (default: the connection's search_path). */
    storeSchema: Type.Optional(Type.String()),
    /** Bootstrap admin token (env FERRY_ADMIN_TOKEN). Default: generated once, kept in DATA_DIR/admin-token. */
    adminToken: Type.Optional(Type.String()),
    /**
     * Key sealing linked service secrets (base64 of 32 bytes; env FERRY_MASTER_KEY). Default: generated
     * once, kept in DATA_DIR/master.key. Replicas sharing a PostgreSQL store must share it.
     */
    masterKey: Type.Optional(Type.String()),
    /** How often nodes send heartbeats. Default 1000 ms. */
    heartbeatIntervalMs: Type.Optional(Type.Number()),
    /** The dispatcher's lease; it lapses this long after the last renewal. Default 5000 ms. */
    dispatcherLeaseMs: Type.Optional(Type.Number()),
    /** A node with no heartbeat for this long is Offline and its attempts are lost. Default 5000 ms. */
    offlineAfterMs: Type.Optional(Type.Number()),
    /** An attempt with no progress report for this long is lost. Default 10000 ms. */
    attemptLeaseMs: Type.Optional(Type.Number()),
    /** How often lease expiry, statuses and elections are checked. Default 200 ms. */
    sweepIntervalMs: Type.Optional(Type.Number()),
    /** pino level. Default info. */
    logLevel: Type.Optional(Type.String()),
    /**
     * HTTPS: the service's certificate (chain) and private key, PEM files. Both, or neither (plain
     * HTTP). Nodes and the CLI trust the CA that signed it with --service-ca / FERRY_SERVICE_CA.
     */
    tlsCert: Type.Optional(Type.String()),
    tlsKey: Type.Optional(Type.String()),
    /**
     * Failed authentication key attempts (registration) allowed per source address per minute, also
     * the burst; past it, key attempts get 429 with Retry-After. Default 10.
     */
    keyFailuresPerMinute: Type.Optional(Type.Number()),
    /** A client must send a request's headers within this long. Default 10000 ms. */
    headersTimeoutMs: Type.Optional(Type.Number()),
    /** ... and the whole request, body included, within this long. Default 60000 ms. */
    requestTimeoutMs: Type.Optional(Type.Number()),
    /** An idle kept-alive connection is closed after this long. Default 5000 ms. */
    keepAliveTimeoutMs: Type.Optional(Type.Number()),
    /** Audit log entries older than this many days are deleted. Default 90. */
    auditRetentionDays: Type.Optional(Type.Number()),
    /**
     * How long a node certificate issued by a gateway's CA is valid; a new one is issued two thirds
     * into it. Default 30 days (2592000000 ms); at least 6 heartbeat intervals.
     */
    nodeCertValidityMs: Type.Optional(Type.Number()),
    /** Node and queue metrics are kept at 10 s resolution for this many hours. Default 24. */
    metricsRetentionHours: Type.Optional(Type.Number()),
    /** ... and then as 5-minute averages, until they are this many days old. Default 7. */
    metricsAverageRetentionDays: Type.Optional(Type.Number()),
    /**
     * The portal's build folder, served at `/`. Default: web/dist of this copy of Ferry (built by
     * `npm ci`, `npm start` or `npm run build:web`).
     */
    portalDir: Type.Optional(Type.String()),
  },
  // A misspelt key in a config file is refused, not silently ignored.
  { additionalProperties: false },
);
export type ServiceOptions = Static<typeof ServiceOptionsSchema>;

/** Checks a config file's options, naming every unknown key (with "did you mean") and wrong type. */
export const serviceOptionsValidator = validator(ServiceOptionsSchema);

export interface CompiledServiceOptions {
  port: number;
  host: string;
  dataDir: string;
  store: string | undefined;
  storeSchema: string | undefined;
  adminToken: string | undefined;
  masterKey: Buffer | undefined;
  heartbeatIntervalMs: number;
  dispatcherLeaseMs: number;
  offlineAfterMs: number;
  attemptLeaseMs: number;
  sweepIntervalMs: number;
  logLevel: string;
  /** Absolute paths of the PEM files, or undefined for plain HTTP. */
  tls: { cert: string; key: string } | undefined;
  keyFailuresPerMinute: number;
  headersTimeoutMs: number;
  requestTimeoutMs: number;
  keepAliveTimeoutMs: number;
  auditRetentionDays: number;
  nodeCertValidityMs: number;
  metricsRetentionHours: number;
  metricsAverageRetentionDays: number;
  /** Absolute path of the portal's build folder (it may be missing: `/` then says how to build it). */
  portalDir: string;
}

/** web/dist beside src/ in this copy of Ferry (a clone, or an installed package). */
export const DEFAULT_PORTAL_DIR = fileURLToPath(new URL('../../web/dist', import.meta.url));

export function compileServiceOptions(options: ServiceOptions): CompiledServiceOptions {
  const compiled: CompiledServiceOptions = {
    port: options.port ?? 8050,
    host: options.host ?? '127.0.0.1',
    dataDir: resolve(options.dataDir ?? 'ferry-data'),
    store: options.store,
    storeSchema: options.storeSchema,
    adminToken: options.adminToken,
    masterKey: options.masterKey === undefined ? undefined : Buffer.from(options.masterKey, 'base64'),
    heartbeatIntervalMs: options.heartbeatIntervalMs ?? 1000,
    dispatcherLeaseMs: options.dispatcherLeaseMs ?? 5000,
    offlineAfterMs: options.offlineAfterMs ?? 5000,
    attemptLeaseMs: options.attemptLeaseMs ?? 10000,
    sweepIntervalMs: options.sweepIntervalMs ?? 200,
    logLevel: options.logLevel ?? 'info',
    tls:
      options.tlsCert !== undefined && options.tlsKey !== undefined
        ? { cert: resolve(options.tlsCert), key: resolve(options.tlsKey) }
        : undefined,
    keyFailuresPerMinute: options.keyFailuresPerMinute ?? 10,
    headersTimeoutMs: options.headersTimeoutMs ?? 10_000,
    requestTimeoutMs: options.requestTimeoutMs ?? 60_000,
    keepAliveTimeoutMs: options.keepAliveTimeoutMs ?? 5_000,
    auditRetentionDays: options.auditRetentionDays ?? 90,
    nodeCertValidityMs: options.nodeCertValidityMs ?? 30 * 86_400_000,
    metricsRetentionHours: options.metricsRetentionHours ?? 24,
    metricsAverageRetentionDays: options.metricsAverageRetentionDays ?? 7,
    portalDir: resolve(options.portalDir ?? DEFAULT_PORTAL_DIR),
  };
  if ((options.tlsCert === undefined) !== (options.tlsKey === undefined)) {
    throw new FerryError('bad_request', 'HTTPS needs --tls-cert and --tls-key together');
  }
  if (!Number.isInteger(compiled.port) || compiled.port < 0 || compiled.port > 65535) {
    throw new FerryError('bad_request', `port must be 0-65535 (got ${options.port})`);
  }
  for (const key of [
    'heartbeatIntervalMs',
    'dispatcherLeaseMs',
    'offlineAfterMs',
    'attemptLeaseMs',
    'sweepIntervalMs',
    'headersTimeoutMs',
    'requestTimeoutMs',
    'keepAliveTimeoutMs',
  ] as const) {
    if (!Number.isFinite(compiled[key]) || compiled[key] < 10)
      throw new FerryError('bad_request', `${key} must be at least 10 ms`);
  }
  if (!Number.isInteger(compiled.keyFailuresPerMinute) || compiled.keyFailuresPerMinute < 1)
    throw new FerryError('bad_request', 'keyFailuresPerMinute must be a whole number of at least 1');
  if (
    typeof compiled.auditRetentionDays !== 'number' ||
    !Number.isFinite(compiled.auditRetentionDays) ||
    compiled.auditRetentionDays <= 0
  )
    throw new FerryError(
      'bad_request',
      `auditRetentionDays must be a number of days above 0 (got ${String(options.auditRetentionDays)})`,
    );
  if (
    !Number.isFinite(compiled.nodeCertValidityMs) ||
    compiled.nodeCertValidityMs < 6 * compiled.heartbeatIntervalMs
  )
    throw new FerryError(
      'bad_request',
      `nodeCertValidityMs must be at least 6 heartbeat intervals (${6 * compiled.heartbeatIntervalMs} ms), so a node has its next certificate well before this one expires`,
    );
  if (!Number.isFinite(compiled.metricsRetentionHours) || compiled.metricsRetentionHours < 1)
    throw new FerryError(
      'bad_request',
      `metricsRetentionHours must be a number of hours of at least 1 (got ${String(options.metricsRetentionHours)})`,
      { hint: 'the 1-hour charts and the scale advice read the 10 s samples' },
    );
  if (
    !Number.isFinite(compiled.metricsAverageRetentionDays) ||
    compiled.metricsAverageRetentionDays * 24 < compiled.metricsRetentionHours
  )
    throw new FerryError(
      'bad_request',
      `metricsAverageRetentionDays must be a number of days covering at least metricsRetentionHours (got ${String(options.metricsAverageRetentionDays)})`,
    );
  if (compiled.requestTimeoutMs < compiled.headersTimeoutMs)
    throw new FerryError('bad_request', 'requestTimeoutMs must be at least headersTimeoutMs');
  if (compiled.dispatcherLeaseMs < 2 * compiled.heartbeatIntervalMs) {
    throw new FerryError('bad_request', 'dispatcherLeaseMs must be at least twice heartbeatIntervalMs');
  }
  if (compiled.adminToken !== undefined && compiled.adminToken.length < 16) {
    throw new FerryError('bad_request', 'the admin token must be at least 16 characters');
  }
  if (compiled.masterKey !== undefined && compiled.masterKey.length !== 32) {
    throw new FerryError(
      'bad_request',
      'the master key must be 32 bytes, base64-encoded (openssl rand -base64 32)',
    );
  }
  return compiled;
}

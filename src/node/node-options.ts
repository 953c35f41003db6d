import { readFileSync } from 'node:fs';
import { hostname, cpus, totalmem } from 'node:os';
import { resolve } from 'node:path';
import { Type, type Static } from 'typebox';
import { FerryError } from '../common/errors.ts';
import { validator } from '../protocol/validate.ts';
import { checkServiceUrl } from '../common/service-url.ts';
import { MAX_LIMIT } from '../protocol/agent.ts';

/** What `ferry node` accepts. Every field is optional except on first start (serviceUrl, key). */
export const NodeOptionsSchema = Type.Object(
  {
    /** The service's URL, e.g. http://127.0.0.1:8050. Needed on first start; kept in the data dir. */
    serviceUrl: Type.Optional(Type.String()),
    /**
     * CA certificate (PEM file) that signed the service's HTTPS certificate (env FERRY_SERVICE_CA).
     * Default: the system's CAs.
     */
    serviceCa: Type.Optional(Type.String()),
    /** Authentication key of the logical gateway (first start only; env FERRY_NODE_KEY). */
    key: Type.Optional(Type.String()),
    /** A file holding the key instead (surrounding white space ignored); not with `key`. */
    keyFile: Type.Optional(Type.String()),
    /** Node name, fixed at registration. Default: the host name. */
    name: Type.Optional(Type.String()),
    /** Node-to-node port. Default 8060; 0 picks a free port. */
    port: Type.Optional(Type.Number()),
    /** Address the node-to-node port listens on. Default 0.0.0.0 (peers on other machines). */
    listen: Type.Optional(Type.String()),
    /** Address other nodes use to reach this one. Default: the host name. */
    advertise: Type.Optional(Type.String()),
    /** Where the node keeps its registration and state. Default ./ferry-node. */
    dataDir: Type.Optional(Type.String()),
    /** Local folders this node may read and write; repeatable. Default: none. */
    allowPaths: Type.Optional(Type.Array(Type.String())),
    /** Node-to-node TLS: certificate, key and CA bundle (PEM files). All three, or none. */
    tlsCert: Type.Optional(Type.String()),
    tlsKey: Type.Optional(Type.String()),
    tlsCa: Type.Optional(Type.String()),
    /**
     * Concurrent jobs limit before the operator sets one. Default: 4 per core, at most one per
     * 256 MiB of memory, at least 2 (2 cores + 24 GiB -> 8).
     */
    defaultLimit: Type.Optional(Type.Number()),
    /** On SIGTERM: how long running tasks may finish before they are handed back. Default 30000 ms. */
    drainGraceMs: Type.Optional(Type.Number()),
    /** How long a peer probe waits for an answer. Default 1000 ms. */
    probeTimeoutMs: Type.Optional(Type.Number()),
    /** The version this node reports (env FERRY_NODE_VERSION; for upgrade drills). Default: Ferry's own. */
    versionOverride: Type.Optional(Type.String()),
    /** pino level. Default info. */
    logLevel: Type.Optional(Type.String()),
  },
  // A misspelt key in a config file is refused, not silently ignored.
  { additionalProperties: false },
);
export type NodeOptions = Static<typeof NodeOptionsSchema>;

/** Checks a config file's options, naming every unknown key (with "did you mean") and wrong type. */
export const nodeOptionsValidator = validator(NodeOptionsSchema);

export interface CompiledNodeOptions {
  serviceUrl: string | undefined;
  serviceCa: string | undefined;
  key: string | undefined;
  name: string;
  /** The name came from --name, not the host name: a mismatch with the registration is an error. */
  nameGiven: boolean;
  port: number;
  listen: string;
  advertise: string;
  dataDir: string;
  allowPaths: string[];
  tls: { cert: string; key: string; ca: string } | undefined;
  defaultLimit: number;
  drainGraceMs: number;
  probeTimeoutMs: number;
  versionOverride: string | undefined;
  logLevel: string;
}

export function defaultConcurrentJobsLimit(cores: number, memoryBytes: number): number {
  const byMemory = Math.floor(memoryBytes / (256 * 1024 * 1024));
  return Math.max(2, Math.min(cores * 4, byMemory));
}

function readKeyFile(file: string): string {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    throw new FerryError(
      'bad_request',
      `cannot read the key file ${file}: ${code === 'ENOENT' ? 'no such file' : (err as Error).message}`,
    );
  }
  const key = text.trim();
  if (key === '') throw new FerryError('bad_request', `the key file ${file} is empty`);
  return key;
}

export function compileNodeOptions(o: NodeOptions): CompiledNodeOptions {
  const tlsParts = [o.tlsCert, o.tlsKey, o.tlsCa].filter((x) => x !== undefined).length;
  if (tlsParts !== 0 && tlsParts !== 3)
    throw new FerryError('bad_request', 'node-to-node TLS needs --tls-cert, --tls-key and --tls-ca together');
  if (o.key !== undefined && o.keyFile !== undefined)
    throw new FerryError('bad_request', 'give the key with --key or with --key-file, not both');
  const name = o.name ?? hostname();
  if (!/^[A-Za-z0-9][A-Za-z0-9_.-]{0,127}$/.test(name)) {
    throw new FerryError(
      'bad_request',
      `node name "${name}" may hold letters, digits, '.', '_' and '-' only (pass --name)`,
    );
  }
  const port = o.port ?? 8060;
  if (!Number.isInteger(port) || port < 0 || port > 65535)
    throw new FerryError('bad_request', `--port must be 0-65535 (got ${o.port})`);
  if (
    o.defaultLimit !== undefined &&
    (!Number.isInteger(o.defaultLimit) || o.defaultLimit < 1 || o.defaultLimit > MAX_LIMIT)
  ) {
    throw new FerryError('bad_request', `--limit must be a whole number from 1 to ${MAX_LIMIT}`);
  }
  const serviceUrl = o.serviceUrl === undefined ? undefined : checkServiceUrl(o.serviceUrl, '--service');
  return {
    serviceUrl,
    serviceCa: o.serviceCa === undefined ? undefined : resolve(o.serviceCa),
    key: o.key ?? (o.keyFile === undefined ? undefined : readKeyFile(o.keyFile)),
    name,
    nameGiven: o.name !== undefined,
    port,
    listen: o.listen ?? '0.0.0.0',
    advertise: o.advertise ?? hostname(),
    dataDir: resolve(o.dataDir ?? 'ferry-node'),
    allowPaths: (o.allowPaths ?? []).map((p) => resolve(p)),
    tls:
      o.tlsCert && o.tlsKey && o.tlsCa
        ? { cert: resolve(o.tlsCert), key: resolve(o.tlsKey), ca: resolve(o.tlsCa) }
        : undefined,
    defaultLimit: o.defaultLimit ?? defaultConcurrentJobsLimit(cpus().length, totalmem()),
    drainGraceMs: o.drainGraceMs ?? 30000,
    probeTimeoutMs: o.probeTimeoutMs ?? 1000,
    versionOverride: o.versionOverride,
    logLevel: o.logLevel ?? 'info',
  };
}

/**
 * `ferry service` and `ferry up` (service + one local node on the embedded store). The service and
 * the node are imported when a command runs, so that a node process (or `ferry gateway list`) does
 * not carry the service's libraries in its memory.
 */
import type { Command } from 'commander';
import { join } from 'node:path';
import type { RunningService } from '../service/service.ts';
import { serviceOptionsValidator, type ServiceOptions } from '../service/service-options.ts';
import type { RunningNode } from '../node/node-agent.ts';
import { readConfigFile, readEnv } from '../common/config.ts';
import { FerryError, toFerryError } from '../common/errors.ts';
import { ApiClient } from './api-client.ts';
import { readPemFile } from '../common/tls.ts';
import { waitForShutdownSignal } from './signals.ts';

interface ServiceFlags {
  config?: string;
  port?: string;
  host?: string;
  dataDir?: string;
  store?: string;
  storeSchema?: string;
  tlsCert?: string;
  tlsKey?: string;
  auditRetentionDays?: string;
}

function serviceOptionsFrom(flags: ServiceFlags): ServiceOptions {
  const env = readEnv();
  const o: ServiceOptions = { ...readConfigFile(flags.config, serviceOptionsValidator) };
  if (env.adminToken) o.adminToken = env.adminToken;
  if (env.masterKey) o.masterKey = env.masterKey;
  if (env.store) o.store = env.store;
  if (env.logLevel) o.logLevel = env.logLevel;
  if (flags.port !== undefined) {
    o.port = Number(flags.port);
    if (!Number.isInteger(o.port))
      throw new FerryError('bad_request', `--port must be a number (got ${flags.port})`);
  }
  if (flags.host) o.host = flags.host;
  if (flags.dataDir) o.dataDir = flags.dataDir;
  if (flags.store) o.store = flags.store;
  if (flags.storeSchema) o.storeSchema = flags.storeSchema;
  if (flags.tlsCert) o.tlsCert = flags.tlsCert;
  if (flags.tlsKey) o.tlsKey = flags.tlsKey;
  if (flags.auditRetentionDays !== undefined) {
    o.auditRetentionDays = Number(flags.auditRetentionDays);
    if (!Number.isFinite(o.auditRetentionDays))
      throw new FerryError(
        'bad_request',
        `--audit-retention-days must be a number (got ${flags.auditRetentionDays})`,
      );
  }
  return o;
}

function withServiceFlags(cmd: Command): Command {
  return cmd
    .option('--config <file>', 'JSON or YAML file with service options')
    .option('--port <port>', 'API port (default 8050; 0 = any free port)')
    .option('--host <addr>', 'listen address (default 127.0.0.1)')
    .option('--data-dir <dir>', 'data folder: embedded store, admin token, master key (default ./ferry-data)')
    .option('--store <url>', 'postgres://... to use PostgreSQL instead of the embedded SQLite store')
    .option('--store-schema <schema>', 'PostgreSQL schema for the store')
    .option('--tls-cert <file>', 'serve HTTPS with this certificate (PEM; with --tls-key)')
    .option('--tls-key <file>', "the HTTPS certificate's private key (PEM)")
    .option('--audit-retention-days <days>', 'audit log entries older than this are deleted (default 90)');
}

export function serviceCommands(program: Command): void {
  withServiceFlags(
    program.command('service').description('run the control plane: REST API, scheduler, store'),
  ).action(async (_f: ServiceFlags, cmd: Command) => {
    const { startService } = await import('../service/service.ts');
    const svc = await startService(serviceOptionsFrom(cmd.optsWithGlobals<ServiceFlags>()));
    // Listen before announcing, so a SIGTERM sent as soon as the line appears still closes cleanly.
    const signalled = waitForShutdownSignal();
    process.stdout.write(`ferry service listening on ${svc.url}\n`);
    if (svc.adminTokenFile) process.stdout.write(`admin token in ${svc.adminTokenFile}\n`);
    await signalled;
    await svc.close();
  });

  withServiceFlags(
    program.command('up').description('service + one local node on the embedded store: the quickest start'),
  )
    .option('--node-port <port>', "the local node's node-to-node port (default 8060)")
    .option(
      '--allow-path <dir>',
      'a local folder the node may read/write; repeatable',
      (v: string, p: string[]) => [...p, v],
      [],
    )
    .option('--gateway <name>', 'the gateway the local node joins (created if missing)', 'default')
    .option(
      '--service-ca <file>',
      'with --tls-cert: the CA the local node trusts for the service (default: the certificate itself)',
    )
    .action(async (_f: unknown, cmd: Command) => {
      const flags = cmd.optsWithGlobals<
        ServiceFlags & { nodePort?: string; allowPath: string[]; gateway: string; serviceCa?: string }
      >();
      const options = serviceOptionsFrom(flags);
      // Over HTTPS, the local node and this command trust --service-ca, else the certificate itself
      // (enough for a self-signed one).
      const serviceCa =
        options.tlsCert === undefined
          ? undefined
          : (flags.serviceCa ?? readEnv().serviceCa ?? options.tlsCert);
      const { startService } = await import('../service/service.ts');
      const svc: RunningService = await startService(options);
      let node: RunningNode | undefined;
      try {
        const api = new ApiClient(
          svc.url,
          svc.adminToken,
          serviceCa === undefined ? undefined : readPemFile(serviceCa, '--service-ca'),
        );
        let key: string;
        try {
          key = (
            await api.get<{ key1: string }>(`/api/v1/gateways/${encodeURIComponent(flags.gateway)}/keys`)
          ).key1;
        } catch (err) {
          if (toFerryError(err).code !== 'not_found') throw err;
          key = (await api.post<{ key1: string }>('/api/v1/gateways', { name: flags.gateway })).key1;
        }
        const { startNode } = await import('../node/node-agent.ts');
        const logLevel = readEnv().logLevel;
        node = await startNode({
          serviceUrl: svc.url,
          ...(serviceCa === undefined ? {} : { serviceCa }),
          key,
          port: flags.nodePort === undefined ? 8060 : Number(flags.nodePort),
          listen: '127.0.0.1',
          advertise: '127.0.0.1',
          dataDir: join(options.dataDir ?? 'ferry-data', 'node'),
          allowPaths: flags.allowPath,
          ...(logLevel ? { logLevel } : {}),
        });
      } catch (err) {
        await svc.close();
        const fe = toFerryError(err);
        // The local node's port is --node-port here, not the --port the node's own hint names.
        if (fe.code === 'conflict' && fe.message.startsWith('node-to-node port'))
          throw new FerryError('conflict', fe.message, {
            hint: 'pick another --node-port (0 = any free port), or stop what listens there (another `ferry up` or `ferry node`?)',
            cause: err,
          });
        throw err;
      }
      const signalled = waitForShutdownSignal().then(() => 'signal' as const);
      process.stdout.write(
        [
          `Ferry is up.`,
          `  portal:      ${svc.url}/   (sign in with the admin token)`,
          `  API:         ${svc.url}   (OpenAPI: ${svc.url}/api/v1/openapi.json)`,
          `  admin token: ${svc.adminToken}${svc.adminTokenFile ? `   (kept in ${svc.adminTokenFile})` : ''}`,
          `  gateway:     ${node.registration.gatewayName}, node ${node.registration.nodeName} on port ${node.peerPort}`,
          `Try: FERRY_TOKEN=${svc.adminToken} npm run ferry -- node list ${node.registration.gatewayName}`,
          '',
        ].join('\n'),
      );
      const outcome = await Promise.race([node.stopped, signalled]);
      if (outcome === 'signal') await node.shutdown();
      await svc.close();
      if (outcome !== 'signal' && outcome) throw outcome;
    });
}

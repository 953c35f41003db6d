/** `ferry node ...`: run a node, look at it locally, and manage nodes through the service. */
import type { Command } from 'commander';
import { cliContext, serviceCaFrom } from './context.ts';
import { enc } from './api-client.ts';
import { ago, bytes, printFields, printJson, printTable } from './output.ts';
import { nodeOptionsValidator, type NodeOptions } from '../node/node-options.ts';
import { readLocalStatus, readRegistration, removeRegistration } from '../node/node-state.ts';
import { ServiceClient } from '../node/service-client.ts';
import { readConfigFile, readEnv } from '../common/config.ts';
import { FerryError, toFerryError } from '../common/errors.ts';
import { resolve } from 'node:path';
import { waitForShutdownSignal } from './signals.ts';
import { readFileSync, writeFileSync } from 'node:fs';
import { createBackup, restoreBackup } from '../node/node-backup.ts';

/** The backup password: --password-file (its first line), else FERRY_BACKUP_PASSWORD. */
function backupPassword(file: string | undefined): string {
  if (file !== undefined) {
    let text: string;
    try {
      text = readFileSync(file, 'utf8');
    } catch (err) {
      throw new FerryError('bad_request', `cannot read --password-file ${file}: ${(err as Error).message}`);
    }
    return text.split(/\r?\n/)[0] ?? '';
  }
  const env = readEnv().backupPassword;
  if (env === undefined)
    throw new FerryError('bad_request', 'a backup password is needed', {
      hint: 'give --password-file FILE, or set FERRY_BACKUP_PASSWORD',
    });
  return env;
}

export const nodeColumns: [string, string][] = [
  ['NAME', 'name'],
  ['STATUS', 'status'],
  ['VERSION', 'version'],
  ['ROLE', 'role'],
  ['CPU', 'cpu'],
  ['MEM AVAIL', 'mem'],
  ['NET IN/OUT', 'net'],
  ['JOBS', 'jobs'],
  ['DRAIN', 'drain'],
  ['NODE-TO-NODE', 'transport'],
  ['CREDENTIALS', 'creds'],
  ['SEEN', 'seen'],
  ['REASON', 'statusHint'],
];

/**
 * The node list as a table. A node that is not reporting (Offline) shows `-` for its figures rather
 * than the last ones it sent, which would read as live; SEEN says how long ago it last was.
 */
export function nodeRows(nodes: Record<string, unknown>[], now = Date.now()): Record<string, unknown>[] {
  return nodes.map((n) => {
    const reporting = n['status'] !== 'Offline';
    return {
      ...n,
      cpu: reporting && typeof n['cpuPercent'] === 'number' ? `${n['cpuPercent']}%` : '-',
      mem: reporting ? bytes(n['memoryAvailableBytes'] as number | null) : '-',
      net: reporting
        ? `${bytes(n['networkInBytesPerSec'] as number | null)}/s / ${bytes(n['networkOutBytesPerSec'] as number | null)}/s`
        : '-',
      jobs: `${reporting ? String(n['jobsRunning']) : '-'}/${String(n['jobsLimit'])}`,
      // The gateway-held credentials: in sync, out of sync (the reason says which), or - (none held).
      creds: ((s) => (s === undefined || s === 'none' ? '-' : s))(
        (n['credentials'] as { status?: string } | undefined)?.status,
      ),
      seen: ago(n['lastSeenAt'], now),
      statusHint: n['status'] === 'Online' ? '' : n['statusHint'],
    };
  });
}

interface RunFlags {
  config?: string;
  service?: string;
  serviceCa?: string;
  key?: string;
  keyFile?: string;
  name?: string;
  port?: string;
  listen?: string;
  advertise?: string;
  dataDir?: string;
  allowPath: string[];
  tlsCert?: string;
  tlsKey?: string;
  tlsCa?: string;
  limit?: string;
  drainGraceMs?: string;
}

function num(v: string | undefined, flag: string): number | undefined {
  if (v === undefined) return undefined;
  const n = Number(v);
  if (!Number.isFinite(n)) throw new FerryError('bad_request', `${flag} must be a number (got ${v})`);
  return n;
}

function nodeOptionsFrom(flags: RunFlags): NodeOptions {
  const env = readEnv();
  const file = readConfigFile(flags.config, nodeOptionsValidator);
  const merged: NodeOptions = { ...file };
  if (env.nodeVersion) merged.versionOverride = env.nodeVersion;
  if (env.logLevel) merged.logLevel = env.logLevel;
  if (env.serviceCa) merged.serviceCa = env.serviceCa;
  // The key comes from one place: the last of config file, FERRY_NODE_KEY, --key or --key-file.
  if (env.nodeKey) {
    merged.key = env.nodeKey;
    delete merged.keyFile;
  }
  if (flags.key !== undefined && flags.keyFile !== undefined)
    throw new FerryError('bad_request', 'give the key with --key or with --key-file, not both');
  if (flags.key !== undefined) delete merged.keyFile;
  if (flags.keyFile !== undefined) {
    merged.keyFile = flags.keyFile;
    delete merged.key;
  }
  const set = <K extends keyof NodeOptions>(k: K, v: NodeOptions[K] | undefined): void => {
    if (v !== undefined) merged[k] = v;
  };
  set('serviceUrl', flags.service);
  set('serviceCa', flags.serviceCa);
  set('key', flags.key);
  set('name', flags.name);
  set('port', num(flags.port, '--port'));
  set('listen', flags.listen);
  set('advertise', flags.advertise);
  set('dataDir', flags.dataDir);
  if (flags.allowPath.length > 0) merged.allowPaths = flags.allowPath;
  set('tlsCert', flags.tlsCert);
  set('tlsKey', flags.tlsKey);
  set('tlsCa', flags.tlsCa);
  set('defaultLimit', num(flags.limit, '--limit'));
  set('drainGraceMs', num(flags.drainGraceMs, '--drain-grace-ms'));
  return merged;
}

const collect = (v: string, prev: string[]): string[] => [...prev, v];

export function nodeCommands(program: Command): void {
  const node = program
    .command('node')
    .description('run a gateway node, or manage the nodes of a gateway')
    .addHelpText(
      'after',
      '\n`ferry node [options]` without a command is `ferry node run [options]`: it runs a node\n' +
        '(`ferry node --service URL --key KEY ...`). `ferry node run --help` lists its options.',
    );

  node
    .command('run', { isDefault: true })
    .description(
      'run a node (the default command: `ferry node [options]` is the same): registers on first start (with --service and a key), then runs; restart is idempotent',
    )
    .option('--config <file>', 'JSON or YAML file with node options')
    .option('--service <url>', 'the service URL (first start)')
    .option(
      '--service-ca <file>',
      "CA certificate (PEM) that signed the service's HTTPS certificate (env FERRY_SERVICE_CA)",
    )
    .option(
      '--key <key>',
      'the gateway authentication key (first start; `ps` shows it: prefer --key-file or env FERRY_NODE_KEY)',
    )
    .option('--key-file <file>', 'a file holding the gateway authentication key (first start)')
    .option('--name <name>', 'node name, fixed at registration (default: host name)')
    .option('--port <port>', 'node-to-node port (default 8060; 0 = any free port)')
    .option('--listen <addr>', 'address the node-to-node port listens on (default 0.0.0.0)')
    .option('--advertise <host>', 'address other nodes use to reach this node (default: host name)')
    .option('--data-dir <dir>', 'where the node keeps its registration (default ./ferry-node)')
    .option('--allow-path <dir>', 'a local folder this node may read/write; repeatable', collect, [])
    .option(
      '--tls-cert <file>',
      "node-to-node TLS certificate (PEM), used when the gateway's encryption mode is tls (default: one from the gateway's CA)",
    )
    .option('--tls-key <file>', 'node-to-node TLS private key (PEM)')
    .option('--tls-ca <file>', "CA bundle that signed the nodes' certificates (PEM)")
    .option(
      '--limit <n>',
      'concurrent jobs limit before an operator sets one (default from cores and memory)',
    )
    .option('--drain-grace-ms <ms>', 'on SIGTERM, how long running tasks may finish (default 30000)')
    .action(async (_flags: RunFlags, cmd: Command) => {
      const { startNode } = await import('../node/node-agent.ts');
      const running = await startNode(nodeOptionsFrom(cmd.optsWithGlobals<RunFlags>()));
      // Listen before announcing: whoever waits for the line may send SIGTERM at once, and an
      // unhandled SIGTERM would kill the node without draining or leaving.
      const signalled = waitForShutdownSignal().then(() => 'signal' as const);
      process.stdout.write(
        `node ${running.registration.nodeName} of gateway ${running.registration.gatewayName} running (node-to-node port ${running.peerPort})\n`,
      );
      const outcome = await Promise.race([running.stopped, signalled]);
      if (outcome === 'signal') {
        await running.shutdown();
        return;
      }
      if (outcome) throw outcome;
    });

  node
    .command('status')
    .description("this machine's node as the node sees it: gateway, name, connection to the service, role")
    .option('--data-dir <dir>', 'the node data dir', 'ferry-node')
    .action(async (_opts: unknown, cmd: Command) => {
      const opts = cmd.optsWithGlobals<{ dataDir: string; json?: boolean }>();
      const dir = resolve(opts.dataDir);
      const reg = readRegistration(dir);
      if (!reg)
        throw new FerryError('not_found', `no node is registered in ${dir}`, {
          hint: 'start one with `ferry node --service URL --key KEY`',
        });
      const s = readLocalStatus(dir);
      const ageMs = s ? Date.now() - Date.parse(s.at) : Infinity;
      const running = s !== undefined && ageMs < 10_000 && processAlive(s.pid);
      const view = {
        gateway: reg.gatewayName,
        node: reg.nodeName,
        service: reg.serviceUrl,
        process: running ? `running (pid ${s.pid})` : 'not running',
        connection: !running
          ? 'none'
          : s.connected
            ? 'connected'
            : `disconnected: ${s.lastError ?? 'unknown'}`,
        role: running ? s.role : '-',
        status: running ? s.status : '-',
        statusHint: running ? s.statusHint : '',
        jobs: running ? `${s.running}/${s.limit}` : '-',
        draining: running ? s.draining : false,
        peerUrl: s?.peerUrl ?? '-',
        registeredAt: reg.registeredAt,
      };
      if (opts.json) return printJson(view);
      printFields(Object.entries(view));
    });

  node
    .command('backup')
    .description(
      "save this machine's node (identity, the gateway credential key, its credential set) to a password-protected file",
    )
    .option('--data-dir <dir>', 'the node data dir', 'ferry-node')
    .requiredOption('-o, --output <file>', 'the backup file to write (mode 0600)')
    .option('--password-file <file>', 'file whose first line is the password (else FERRY_BACKUP_PASSWORD)')
    .action((_opts: unknown, cmd: Command) => {
      const o = cmd.opts<{ dataDir: string; output: string; passwordFile?: string }>();
      const text = createBackup(resolve(o.dataDir), backupPassword(o.passwordFile));
      writeFileSync(o.output, text, { mode: 0o600 });
      process.stdout.write(`backed up the node in ${resolve(o.dataDir)} to ${o.output}\n`);
    });

  node
    .command('restore')
    .description(
      'restore a node from a backup into a data dir: started from it (on this or a new machine), it runs as the same node',
    )
    .requiredOption('-i, --input <file>', 'the backup file')
    .option('--data-dir <dir>', 'the node data dir to restore into', 'ferry-node')
    .option('--password-file <file>', 'file whose first line is the password (else FERRY_BACKUP_PASSWORD)')
    .option('--force', 'replace a node already in the data dir')
    .action((_opts: unknown, cmd: Command) => {
      const o = cmd.opts<{ input: string; dataDir: string; passwordFile?: string; force?: boolean }>();
      let text: string;
      try {
        text = readFileSync(o.input, 'utf8');
      } catch (err) {
        throw new FerryError('bad_request', `cannot read ${o.input}: ${(err as Error).message}`);
      }
      const dir = resolve(o.dataDir);
      const reg = restoreBackup(text, backupPassword(o.passwordFile), dir, o.force === true);
      process.stdout.write(
        `restored node ${reg.nodeName} of gateway ${reg.gatewayName} into ${dir}: start it with \`ferry node --data-dir ${o.dataDir}\` (it is the same node: stop the old one first)\n`,
      );
    });

  node
    .command('leave')
    .description("remove this machine's node from its gateway and forget the registration")
    .option('--data-dir <dir>', 'the node data dir', 'ferry-node')
    .option(
      '--service-ca <file>',
      "CA certificate (PEM) that signed the service's HTTPS certificate (env FERRY_SERVICE_CA)",
    )
    .action(async (_opts: unknown, cmd: Command) => {
      const opts = cmd.optsWithGlobals<{ dataDir: string; serviceCa?: string }>();
      const dir = resolve(opts.dataDir);
      const reg = readRegistration(dir);
      if (!reg) throw new FerryError('not_found', `no node is registered in ${dir}`);
      const client = new ServiceClient(reg.serviceUrl, reg.nodeToken, serviceCaFrom(opts.serviceCa));
      try {
        await client.leave();
      } catch (err) {
        const fe = toFerryError(err);
        if (fe.code !== 'unauthorized') throw fe; // already deleted at the service: just forget it here
      } finally {
        await client.close();
      }
      removeRegistration(dir);
      process.stdout.write(`node ${reg.nodeName} left gateway ${reg.gatewayName}\n`);
    });

  node
    .command('list <gateway>')
    .description('every node: status, version, role, CPU, memory, network, jobs running/limit')
    .action(async (gateway: string, _opts, cmd: Command) => {
      const c = cliContext(cmd);
      const res = await c.api.get<{ nodes: Record<string, unknown>[] }>(
        `/api/v1/gateways/${enc(gateway)}/nodes`,
      );
      if (c.json) return printJson(res);
      printTable(nodeRows(res.nodes), nodeColumns);
    });

  node
    .command('set-limit <gateway> <node> <limit>')
    .description('change a node\'s concurrent jobs limit, live ("default" restores the node\'s own)')
    .action(async (gateway: string, name: string, limit: string, _opts, cmd: Command) => {
      const c = cliContext(cmd);
      const value = limit === 'default' ? null : Number(limit);
      if (value !== null && (!Number.isInteger(value) || value < 1))
        throw new FerryError(
          'bad_request',
          `limit must be a whole number of at least 1 or "default" (got ${limit})`,
        );
      const res = await c.api.put<Record<string, unknown>>(
        `/api/v1/gateways/${enc(gateway)}/nodes/${enc(name)}/limit`,
        { limit: value },
      );
      if (c.json) return printJson(res);
      process.stdout.write(`${name}: concurrent jobs limit ${String(res['jobsLimit'])}\n`);
    });

  for (const [action, text] of [
    ['drain', 'stop giving the node new tasks; running ones finish'],
    ['resume', 'give the node tasks again'],
  ] as const) {
    node
      .command(`${action} <gateway> <node>`)
      .description(text)
      .action(async (gateway: string, name: string, _opts, cmd: Command) => {
        const c = cliContext(cmd);
        const res = await c.api.post<Record<string, unknown>>(
          `/api/v1/gateways/${enc(gateway)}/nodes/${enc(name)}/${action}`,
        );
        if (c.json) return printJson(res);
        process.stdout.write(`${name}: ${action === 'drain' ? 'draining' : 'resumed'}\n`);
      });
  }

  node
    .command('delete <gateway> <node>')
    .description('remove a node from the gateway (its running tasks move to other nodes)')
    .action(async (gateway: string, name: string, _opts, cmd: Command) => {
      const c = cliContext(cmd);
      await c.api.delete(`/api/v1/gateways/${enc(gateway)}/nodes/${enc(name)}`);
      if (c.json) return printJson({ deleted: name });
      process.stdout.write(`deleted node ${name} from ${gateway}\n`);
    });
}

function processAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

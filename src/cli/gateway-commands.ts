/** `ferry gateway ...` */
import type { Command } from 'commander';
import { cliContext } from './context.ts';
import { enc } from './api-client.ts';
import { printFields, printJson, printTable } from './output.ts';
import { fetchGateway, printGateway, runTop } from './gateway-top.ts';
import { FerryError } from '../common/errors.ts';

interface GatewaySummary {
  name: string;
  status: string;
  statusHint: string;
  version: string | null;
  nodes: number;
  maxNodes: number | null;
  dispatcher: string | null;
  epoch: number;
  dispatcherSince: string | null;
  dispatcherReason: string;
  encryption: string;
}

interface AdviceView {
  kind: string;
  title: string;
  detail: string;
  figures: { name: string; value: number; unit: string }[];
}

export function gatewayCommands(program: Command): void {
  const gw = program.command('gateway').description('logical gateways and their authentication keys');

  gw.command('create <name>')
    .description('create a logical gateway; prints its two authentication keys')
    .option('--max-nodes <n>', 'optional cap on nodes (default: none)', (v) => Number(v))
    .action(async (name: string, opts: { maxNodes?: number }, cmd: Command) => {
      const c = cliContext(cmd);
      const res = await c.api.post<GatewaySummary & { key1: string; key2: string }>('/api/v1/gateways', {
        name,
        ...(opts.maxNodes ? { maxNodes: opts.maxNodes } : {}),
      });
      if (c.json) return printJson(res);
      printFields([
        ['gateway', res.name],
        ['status', res.status],
        ['key1', res.key1],
        ['key2', res.key2],
      ]);
      const ca = c.api.base.startsWith('https:') ? ' --service-ca CA.pem' : '';
      process.stdout.write(
        `\nRegister a node with: ferry node --service ${c.api.base}${ca} --key ${res.key1}\n`,
      );
    });

  gw.command('list')
    .description('list gateways with status, version and dispatcher')
    .action(async (_opts, cmd: Command) => {
      const c = cliContext(cmd);
      const res = await c.api.get<{ gateways: GatewaySummary[] }>('/api/v1/gateways');
      if (c.json) return printJson(res);
      printTable(res.gateways as unknown as Record<string, unknown>[], [
        ['NAME', 'name'],
        ['STATUS', 'status'],
        ['VERSION', 'version'],
        ['NODES', 'nodes'],
        ['DISPATCHER', 'dispatcher'],
        ['EPOCH', 'epoch'],
      ]);
    });

  gw.command('show <name>')
    .description(
      'a gateway, its dispatcher (and why it has the role) and every node: status and reason, version, role, CPU, available memory, network in/out, jobs running/limit',
    )
    .action(async (name: string, _opts, cmd: Command) => {
      const c = cliContext(cmd);
      const res = await fetchGateway(c, name);
      if (c.json) return printJson(res);
      printGateway(res);
    });

  gw.command('top <name>')
    .description(
      'the `show` table, refreshed live (every 2 s): q or Ctrl-C quits; without a terminal, prints each refresh after a timestamp line',
    )
    .option('--interval <seconds>', 'seconds between refreshes', '2')
    .option('--count <n>', 'stop after this many refreshes (default: until interrupted)')
    .action(async (name: string, opts: { interval: string; count?: string }, cmd: Command) => {
      const c = cliContext(cmd);
      const interval = Number(opts.interval);
      if (!Number.isFinite(interval) || interval < 0.5)
        throw new FerryError(
          'bad_request',
          `--interval must be a number of seconds of at least 0.5 (got ${opts.interval})`,
        );
      const count = opts.count === undefined ? undefined : Number(opts.count);
      if (count !== undefined && (!Number.isInteger(count) || count < 1))
        throw new FerryError(
          'bad_request',
          `--count must be a whole number of at least 1 (got ${opts.count})`,
        );
      await runTop(c, name, { intervalMs: interval * 1000, count });
    });

  gw.command('advise <name>')
    .description(
      'whether to scale out (add a node) or up (raise limits), from the metrics history, with the figures behind it',
    )
    .option('--window <window>', 'how far back to look: 1h, 24h or 7d', '1h')
    .action(async (name: string, opts: { window: string }, cmd: Command) => {
      const c = cliContext(cmd);
      if (!['1h', '24h', '7d'].includes(opts.window))
        throw new FerryError('bad_request', `--window takes 1h, 24h or 7d (got "${opts.window}")`);
      const res = await c.api.get<{ gateway: string; window: string; advice: AdviceView[] }>(
        `/api/v1/gateways/${enc(name)}/advice?window=${opts.window}`,
      );
      if (c.json) return printJson(res);
      for (const [i, a] of res.advice.entries()) {
        const kind =
          a.kind === 'scale_out' ? 'SCALE OUT' : a.kind === 'scale_up' ? 'SCALE UP' : 'NOTHING TO DO';
        process.stdout.write(`${i === 0 ? '' : '\n'}${kind}: ${a.title}\n${a.detail}\n`);
        for (const f of a.figures) process.stdout.write(`  ${f.name}: ${f.value} ${f.unit}\n`);
      }
    });

  gw.command('keys <name>')
    .description('show the authentication keys, or regenerate one (the old one stops working at once)')
    .option('--regenerate <which>', 'key1 or key2')
    .option(
      '--show <which>',
      'print only key1 or key2, bare, for scripts: KEY=$(ferry gateway keys GW --show key1) (after --regenerate if both)',
    )
    .action(async (name: string, opts: { regenerate?: string; show?: string }, cmd: Command) => {
      const c = cliContext(cmd);
      const { show } = opts;
      if (show !== undefined && show !== 'key1' && show !== 'key2')
        throw new FerryError('bad_request', `--show takes key1 or key2 (got "${show}")`);
      const res = opts.regenerate
        ? await c.api.post<{ key1: string; key2: string }>(
            `/api/v1/gateways/${enc(name)}/keys/${enc(opts.regenerate)}/regenerate`,
          )
        : await c.api.get<{ key1: string; key2: string }>(`/api/v1/gateways/${enc(name)}/keys`);
      if (show !== undefined) {
        process.stdout.write(`${res[show]}\n`);
        return;
      }
      if (c.json) return printJson(res);
      printFields([
        ['key1', res.key1],
        ['key2', res.key2],
      ]);
    });

  gw.command('update <name>')
    .description('change a gateway setting')
    .option('--max-nodes <n>', 'cap on nodes; "none" removes it')
    .option(
      '--encryption <mode>',
      'node-to-node encryption: none or tls (mutual TLS; certificates from the gateway CA unless a node has --tls-cert); changed live, no node deleted',
    )
    .action(async (name: string, opts: { maxNodes?: string; encryption?: string }, cmd: Command) => {
      const c = cliContext(cmd);
      if (opts.encryption !== undefined && opts.encryption !== 'none' && opts.encryption !== 'tls')
        throw new FerryError('bad_request', `--encryption takes none or tls (got "${opts.encryption}")`);
      const body = {
        ...(opts.maxNodes === undefined
          ? {}
          : { maxNodes: opts.maxNodes === 'none' ? null : Number(opts.maxNodes) }),
        ...(opts.encryption === undefined ? {} : { encryption: opts.encryption }),
      };
      const res = await c.api.patch<GatewaySummary>(`/api/v1/gateways/${enc(name)}`, body);
      if (c.json) return printJson(res);
      printFields([
        ['gateway', res.name],
        ['max nodes', res.maxNodes ?? 'none'],
        ['encryption', res.encryption],
      ]);
    });

  gw.command('events <name>')
    .description('recent events: dispatcher changes (with the reason), lost attempts, registrations')
    .option('--limit <n>', 'how many', (v) => Number(v), 50)
    .action(async (name: string, opts: { limit: number }, cmd: Command) => {
      const c = cliContext(cmd);
      const res = await c.api.get<{ events: Record<string, unknown>[] }>(
        `/api/v1/gateways/${enc(name)}/events?limit=${opts.limit}`,
      );
      if (c.json) return printJson(res);
      printTable(res.events.reverse(), [
        ['AT', 'at'],
        ['KIND', 'kind'],
        ['MESSAGE', 'message'],
      ]);
    });

  gw.command('resync-credentials <name>')
    .description(
      "have the dispatcher push the gateway's whole credential set to every node again, and wait until every node up holds it",
    )
    .option('--timeout <seconds>', 'how long to wait', '30')
    .action(async (name: string, opts: { timeout: string }, cmd: Command) => {
      const c = cliContext(cmd);
      await c.api.post(`/api/v1/gateways/${enc(name)}/resync-credentials`, {});
      type Row = {
        name: string;
        status: string;
        credentials: { status: string; versions: Record<string, number> };
      };
      const deadline = Date.now() + Number(opts.timeout) * 1000;
      let nodes: Row[];
      for (;;) {
        nodes = (await c.api.get<{ nodes: Row[] }>(`/api/v1/gateways/${enc(name)}/nodes`)).nodes;
        const behind = nodes.filter((n) => n.status !== 'Offline' && n.credentials.status === 'out of sync');
        if (behind.length === 0) break;
        if (Date.now() >= deadline)
          throw new FerryError(
            'unavailable',
            `still out of sync after ${opts.timeout} s: ${behind.map((n) => n.name).join(', ')}`,
            { hint: `\`ferry gateway show ${name}\` gives each node's status and its reason` },
          );
        await new Promise((r) => setTimeout(r, 300));
      }
      if (c.json) return printJson({ gateway: name, nodes });
      printTable(
        nodes.map((n) => ({
          ...n,
          credentialStatus: n.credentials.status,
          versions:
            Object.entries(n.credentials.versions)
              .map(([ls, v]) => `${ls}@${v}`)
              .join(' ') || '-',
        })),
        [
          ['NODE', 'name'],
          ['STATUS', 'status'],
          ['CREDENTIALS', 'credentialStatus'],
          ['VERSIONS', 'versions'],
        ],
      );
    });

  gw.command('delete <name>')
    .description('delete a gateway (its nodes are removed; it must have no linked services)')
    .action(async (name: string, _opts, cmd: Command) => {
      const c = cliContext(cmd);
      await c.api.delete(`/api/v1/gateways/${enc(name)}`);
      if (c.json) return printJson({ deleted: name });
      process.stdout.write(`deleted gateway ${name}\n`);
    });
}

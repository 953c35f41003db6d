/** `ferry audit`: who changed what, from the service's audit log (admin only). */
import type { Command } from 'commander';
import { cliContext } from './context.ts';
import { printJson, printTable } from './output.ts';
import { FerryError } from '../common/errors.ts';

interface AuditEntry {
  at: string;
  actor: string;
  role: string;
  method: string;
  route: string;
  params: Record<string, string | number | boolean | null>;
  details: Record<string, string | number | boolean | null>;
  status: number;
}

const DURATION_UNITS_MS: Record<string, number> = { s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000 };

/** `90s`, `30m`, `24h`, `7d` in milliseconds. */
export function parseDuration(text: string, flag: string): number {
  const m = /^(\d+)([smhd])$/.exec(text.trim());
  const unit = m?.[2] === undefined ? undefined : DURATION_UNITS_MS[m[2]];
  if (!m || unit === undefined)
    throw new FerryError(
      'bad_request',
      `${flag} takes a duration such as 90s, 30m, 24h or 7d (got "${text}")`,
    );
  return Number(m[1]) * unit;
}

/** The route with its parameters put in: `POST /api/v1/gateways/gw/nodes/node-1/drain`. */
function request(e: AuditEntry): string {
  const path = e.route.replace(/\{(\w+)\}/g, (whole, p: string) =>
    e.params[p] === undefined ? whole : String(e.params[p]),
  );
  return `${e.method} ${path}`;
}

export function auditCommands(program: Command): void {
  program
    .command('audit')
    .description('the audit log: who changed what (admin only), newest last')
    .option('--since <duration>', 'only what happened within this long, e.g. 30m, 24h, 7d')
    .option('--limit <n>', 'at most this many entries, the newest (1-1000)', (v) => Number(v), 100)
    .option('--actor <name>', 'only what this token did (its name, or "bootstrap")')
    .action(async (opts: { since?: string; limit: number; actor?: string }, cmd: Command) => {
      const c = cliContext(cmd);
      if (!Number.isInteger(opts.limit) || opts.limit < 1 || opts.limit > 1000)
        throw new FerryError('bad_request', '--limit takes a whole number from 1 to 1000');
      const q = new URLSearchParams({ limit: String(opts.limit) });
      if (opts.since !== undefined)
        q.set('since', new Date(Date.now() - parseDuration(opts.since, '--since')).toISOString());
      if (opts.actor !== undefined) q.set('actor', opts.actor);
      const res = await c.api.get<{ entries: AuditEntry[] }>(`/api/v1/audit?${q.toString()}`);
      if (c.json) return printJson(res);
      printTable(
        res.entries.reverse().map((e) => ({
          ...e,
          request: request(e),
          detail: Object.keys(e.details).length > 0 ? e.details : undefined,
        })),
        [
          ['AT', 'at'],
          ['ACTOR', 'actor'],
          ['ROLE', 'role'],
          ['STATUS', 'status'],
          ['REQUEST', 'request'],
          ['DETAILS', 'detail'],
        ],
      );
    });
}

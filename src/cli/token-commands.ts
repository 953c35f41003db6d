/** `ferry token ...`: API tokens with roles (admin only). The roles are src/service/roles.ts's. */
import type { Command } from 'commander';
import { cliContext } from './context.ts';
import { enc } from './api-client.ts';
import { ago, printFields, printJson, printTable } from './output.ts';
import { FerryError } from '../common/errors.ts';
import { ROLES, ROLE_MEANING } from '../service/roles.ts';

interface ApiToken {
  id: string;
  name: string;
  role: string;
  createdAt: string;
  createdBy: string;
  lastUsedAt: string | null;
  revokedAt: string | null;
  revokedBy: string | null;
}

export function tokenCommands(program: Command): void {
  const token = program
    .command('token')
    .description('API tokens with roles (admin only): make, list, revoke')
    .addHelpText(
      'after',
      `\nRoles:\n${ROLES.map((r) => `  ${r.padEnd(9)} ${ROLE_MEANING[r]}`).join('\n')}\n`,
    );

  token
    .command('create')
    .description('make an API token with a role; the token is printed this once and kept only as its hash')
    .requiredOption('--name <name>', 'a name for the token, unique (the audit log shows it)')
    .requiredOption('--role <role>', ROLES.join(' | '))
    .action(async (opts: { name: string; role: string }, cmd: Command) => {
      const c = cliContext(cmd);
      if (!(ROLES as readonly string[]).includes(opts.role))
        throw new FerryError('bad_request', `--role takes ${ROLES.join(', ')} (got "${opts.role}")`);
      const res = await c.api.post<ApiToken & { token: string }>('/api/v1/tokens', {
        name: opts.name,
        role: opts.role,
      });
      if (c.json) return printJson(res);
      printFields([
        ['name', res.name],
        ['role', res.role],
        ['token', res.token],
      ]);
      process.stdout.write(
        '\nKeep the token now: it is not shown again. Use it with --token or FERRY_TOKEN.\n',
      );
    });

  token
    .command('list')
    .description('list the API tokens (revoked ones too), never the tokens themselves')
    .action(async (_opts, cmd: Command) => {
      const c = cliContext(cmd);
      const res = await c.api.get<{ tokens: ApiToken[] }>('/api/v1/tokens');
      if (c.json) return printJson(res);
      const now = Date.now();
      printTable(
        res.tokens.map((t) => ({
          ...t,
          created: `${ago(t.createdAt, now)} by ${t.createdBy}`,
          used: t.lastUsedAt ? ago(t.lastUsedAt, now) : 'never',
          state: t.revokedAt ? `revoked ${ago(t.revokedAt, now)} by ${t.revokedBy}` : 'active',
        })),
        [
          ['NAME', 'name'],
          ['ROLE', 'role'],
          ['CREATED', 'created'],
          ['LAST USED', 'used'],
          ['STATE', 'state'],
        ],
      );
    });

  token
    .command('revoke <name>')
    .description('revoke an API token: refused from its very next request, on every service replica')
    .action(async (name: string, _opts, cmd: Command) => {
      const c = cliContext(cmd);
      await c.api.delete(`/api/v1/tokens/${enc(name)}`);
      if (c.json) return printJson({ revoked: name });
      process.stdout.write(`revoked token ${name}\n`);
    });
}

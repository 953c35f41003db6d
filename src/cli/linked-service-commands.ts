/** `ferry linked-service ...` */
import type { Command } from 'commander';
import { cliContext } from './context.ts';
import { enc } from './api-client.ts';
import { printJson, printTable } from './output.ts';
import { readStructuredFile } from '../common/config.ts';
import { FerryError } from '../common/errors.ts';
import { SECRET_PROPERTIES, STORES, STORE_TYPES } from '../protocol/stores.ts';

const collect = (v: string, prev: string[]): string[] => [...prev, v];

/** `key=value`; numbers and booleans keep their type (port=5432, ssl=true). */
function parseProperty(kv: string): [string, unknown] {
  const i = kv.indexOf('=');
  if (i <= 0) throw new FerryError('bad_request', `--property takes key=value (got "${kv}")`);
  const key = kv.slice(0, i);
  const raw = kv.slice(i + 1);
  const value = /^-?\d+$/.test(raw) ? Number(raw) : raw === 'true' ? true : raw === 'false' ? false : raw;
  return [key, value];
}

/**
 * Each store type and its properties, from the same schemas the service validates with:
 * `name` required, `[name]` optional, `*` a secret.
 */
function propertiesHelp(): string {
  const lines = STORE_TYPES.map((type) => {
    const schema = STORES[type].properties as {
      properties: Record<string, unknown>;
      required?: string[];
    };
    const required = new Set(schema.required ?? []);
    const names = Object.keys(schema.properties).map((k) => {
      const secret = SECRET_PROPERTIES[type].includes(k) ? '*' : '';
      return required.has(k) ? `${k}${secret}` : `[${k}${secret}]`;
    });
    return `  ${type.padEnd(Math.max(...STORE_TYPES.map((t) => t.length)))}  ${names.join(' ')}`;
  });
  return `\nProperties of each type ([optional], * a secret):\n${lines.join('\n')}\n`;
}

export function linkedServiceCommands(program: Command): void {
  const ls = program.command('linked-service').description('connections to data stores');

  ls.command('create <name>')
    .description('create or replace a linked service (secret properties are kept encrypted and never shown)')
    .option('--type <type>', STORE_TYPES.join(' | '))
    .option('--gateway <gateway>', 'the gateway whose nodes reach the store')
    .option(
      '--property <key=value>',
      'a property; repeatable (e.g. root=/data, host=db1, password=...)',
      collect,
      [],
    )
    .option('-f, --file <file>', 'JSON or YAML with {type, gateway, properties}')
    .addHelpText('after', propertiesHelp)
    .action(
      async (
        name: string,
        opts: { type?: string; gateway?: string; property: string[]; file?: string },
        cmd: Command,
      ) => {
        const c = cliContext(cmd);
        const fromFile = (opts.file ? readStructuredFile(opts.file) : {}) as {
          type?: string;
          gateway?: string;
          properties?: Record<string, unknown>;
        };
        const body = {
          name,
          type: opts.type ?? fromFile.type,
          gateway: opts.gateway ?? fromFile.gateway,
          properties: {
            ...(fromFile.properties ?? {}),
            ...Object.fromEntries(opts.property.map(parseProperty)),
          },
        };
        if (!body.type) throw new FerryError('bad_request', '--type is required');
        if (!body.gateway) throw new FerryError('bad_request', '--gateway is required');
        const res = await c.api.post<Record<string, unknown>>('/api/v1/linked-services', body);
        if (c.json) return printJson(res);
        process.stdout.write(
          `linked service ${name} (${String(res['type'])}) on gateway ${String(res['gateway'])}\n`,
        );
      },
    );

  ls.command('list')
    .description('list linked services (secrets shown only as set)')
    .action(async (_o, cmd: Command) => {
      const c = cliContext(cmd);
      const res = await c.api.get<{ linkedServices: Record<string, unknown>[] }>('/api/v1/linked-services');
      if (c.json) return printJson(res);
      printTable(res.linkedServices, [
        ['NAME', 'name'],
        ['TYPE', 'type'],
        ['GATEWAY', 'gateway'],
        ['PROPERTIES', 'properties'],
        ['SECRETS', 'secrets'],
      ]);
    });

  ls.command('delete <name>')
    .description('delete a linked service no pipeline uses')
    .action(async (name: string, _o, cmd: Command) => {
      const c = cliContext(cmd);
      await c.api.delete(`/api/v1/linked-services/${enc(name)}`);
      if (c.json) return printJson({ deleted: name });
      process.stdout.write(`deleted linked service ${name}\n`);
    });
}

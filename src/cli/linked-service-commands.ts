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

interface TestStep {
  ok: boolean;
  detail: string;
  ms: number;
  error?: { code: string; message: string; hint?: string };
}

interface TestResult {
  linkedService: string;
  type: string;
  gateway: string;
  node: string;
  ok: boolean;
  read: TestStep;
  write: TestStep | null;
  writeReason: string;
}

function printTestResult(r: TestResult): void {
  const line = (step: string, s: TestStep | null, why: string): string =>
    s
      ? `${step.padEnd(6)} ${(s.ok ? 'ok' : 'FAILED').padEnd(7)} ${s.detail} (${s.ms} ms)`
      : `${step.padEnd(6)} ${'-'.padEnd(7)} ${why}`;
  process.stdout.write(
    `linked service ${r.linkedService} (${r.type}) on gateway ${r.gateway}, tested from node ${r.node}\n` +
      `${line('read', r.read, '')}\n${line('write', r.write, r.writeReason)}\n`,
  );
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
    .option('-f, --file <file>', 'JSON or YAML with {type, gateway, properties, credentials}')
    .option(
      '--credentials <place>',
      "where the secret properties live: service (sealed in the service; default) | gateway (only the gateway's nodes hold them: set them with `ferry credential set`)",
    )
    .addHelpText('after', propertiesHelp)
    .action(
      async (
        name: string,
        opts: { type?: string; gateway?: string; property: string[]; file?: string; credentials?: string },
        cmd: Command,
      ) => {
        const c = cliContext(cmd);
        const fromFile = (opts.file ? readStructuredFile(opts.file) : {}) as {
          type?: string;
          gateway?: string;
          properties?: Record<string, unknown>;
          credentials?: string;
        };
        const credentials = opts.credentials ?? fromFile.credentials;
        const body = {
          name,
          type: opts.type ?? fromFile.type,
          gateway: opts.gateway ?? fromFile.gateway,
          properties: {
            ...(fromFile.properties ?? {}),
            ...Object.fromEntries(opts.property.map(parseProperty)),
          },
          ...(credentials === undefined ? {} : { credentials }),
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

  ls.command('test <name>')
    .description(
      'a node of the gateway connects to the store: can it read, and write (exit 1 and the reason if not)',
    )
    .option('--node <node>', 'the node that connects (default: the dispatcher, else any node that is up)')
    .option(
      '--write',
      'also write and remove a probe object or table (default: when a pipeline writes to it)',
    )
    .option('--no-write', 'only read')
    .option('--timeout <seconds>', 'how long to wait for the node', '30')
    .action(async (name: string, opts: { node?: string; write?: boolean; timeout: string }, cmd: Command) => {
      const c = cliContext(cmd);
      const timeoutSeconds = Number(opts.timeout);
      if (!Number.isInteger(timeoutSeconds) || timeoutSeconds < 1 || timeoutSeconds > 300)
        throw new FerryError(
          'bad_request',
          `--timeout takes whole seconds from 1 to 300 (got "${opts.timeout}")`,
        );
      // commander sets write only when --write or --no-write is given (no default below).
      const write = cmd.getOptionValueSource('write') === 'cli' ? opts.write : undefined;
      const res = await c.api.post<TestResult>(
        `/api/v1/linked-services/${enc(name)}/test`,
        {
          ...(opts.node === undefined ? {} : { node: opts.node }),
          ...(write === undefined ? {} : { write }),
          timeoutSeconds,
        },
        // The service answers within the timeout; leave room for the answer itself.
        timeoutSeconds * 1000 + 10_000,
      );
      if (c.json) printJson(res);
      else printTestResult(res);
      const failed = [res.read, res.write].find((step) => step && !step.ok);
      if (failed?.error)
        throw new FerryError(
          'conflict',
          `node ${res.node} cannot ${failed === res.read ? 'read from' : 'write to'} linked service ${res.linkedService}: ${failed.error.message}`,
          failed.error.hint === undefined ? {} : { hint: failed.error.hint },
        );
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

/**
 * `ferry credential set LINKED_SERVICE`: sets the secret values of a linked service whose credentials
 * live in the gateway (protocol/credentials.ts). The CLI asks the service for a grant (a version and
 * the gateway's public key), seals the values to that key here, and sends the box either straight to
 * a node (`--node URL`, on the on-premises network) or through the service, which relays it unopened
 * to the dispatcher. It then waits until the dispatcher holds that version (and says which nodes do):
 * a set that only reached a node that died is reported, not silently lost.
 */
import { readFileSync } from 'node:fs';
import type { Command } from 'commander';
import { cliContext, type CliContext } from './context.ts';
import { readPemFile } from '../common/tls.ts';
import { enc } from './api-client.ts';
import { printJson } from './output.ts';
import { readStructuredFile } from '../common/config.ts';
import { FerryError, fromProblem } from '../common/errors.ts';
import { GRANT_HEADER, sealCredential } from '../protocol/credentials.ts';
import { SECRET_PROPERTIES, isStoreType } from '../protocol/stores.ts';
import { closeAgents, jsonAgents, requestJson } from '../node/json-request.ts';

const collect = (v: string, prev: string[]): string[] => [...prev, v];

interface Grant {
  linkedService: string;
  gateway: string;
  gatewayId: string;
  version: number;
  gatewayKey: string;
  grant: string;
}

interface NodeRow {
  name: string;
  status: string;
  role: string;
  credentials: { versions: Record<string, number> };
}

/** The values to set: from --property, --from-file, or stdin (a JSON object, or the one secret's value). */
function readValues(
  type: string,
  name: string,
  o: { property: string[]; fromFile?: string; stdin?: boolean },
): Record<string, unknown> {
  const allowed = isStoreType(type) ? SECRET_PROPERTIES[type] : [];
  if (allowed.length === 0)
    throw new FerryError('bad_request', `linked service "${name}" (${type}) has no secret properties to set`);
  const sources = [o.property.length > 0, o.fromFile !== undefined, o.stdin === true].filter(Boolean).length;
  if (sources !== 1)
    throw new FerryError('bad_request', 'give the values one way: --property, --from-file or --stdin', {
      hint: `${type} secret properties: ${allowed.join(', ')}; --stdin or --from-file keep them out of the process list`,
    });
  let values: Record<string, unknown>;
  if (o.fromFile !== undefined) values = readStructuredFile(o.fromFile) as Record<string, unknown>;
  else if (o.stdin === true) {
    const text = readFileSync(0, 'utf8');
    let parsed: unknown;
    try {
      parsed = JSON.parse(text);
    } catch {
      parsed = undefined;
    }
    if (typeof parsed === 'object' && parsed !== null && !Array.isArray(parsed))
      values = parsed as Record<string, unknown>;
    else if (allowed.length === 1) values = { [allowed[0] as string]: text.replace(/\r?\n$/, '') };
    else
      throw new FerryError('bad_request', 'stdin must hold a JSON object of the secret properties', {
        hint: `${type} secret properties: ${allowed.join(', ')}`,
      });
  } else
    values = Object.fromEntries(
      o.property.map((kv) => {
        const i = kv.indexOf('=');
        if (i <= 0) throw new FerryError('bad_request', `--property takes key=value (got "${kv}")`);
        return [kv.slice(0, i), kv.slice(i + 1)];
      }),
    );
  const unknown = Object.keys(values).filter((k) => !allowed.includes(k));
  if (unknown.length > 0)
    throw new FerryError('bad_request', `not a secret property of ${type}: ${unknown.join(', ')}`, {
      hint: `${type} secret properties: ${allowed.join(', ')} (the others are set with \`ferry linked-service create\`)`,
    });
  for (const [k, v] of Object.entries(values))
    if (typeof v !== 'string' || v.length === 0)
      throw new FerryError('bad_request', `${k} must be a non-empty string`);
  return values;
}

/**
 * The node `--node` names: a node's name (sent to its advertised node-to-node address), or a URL
 * (matched to the node advertised there, or named by --node-name).
 */
async function nodeTarget(
  c: CliContext,
  gateway: string,
  node: string,
  nodeName: string | undefined,
): Promise<{ name: string; url: string }> {
  const nodes = (
    await c.api.get<{ nodes: { name: string; peerAddress: string; transport?: string }[] }>(
      `/api/v1/gateways/${enc(gateway)}/nodes`,
    )
  ).nodes;
  if (!/^https?:\/\//.test(node)) {
    const n = nodes.find((x) => x.name === node);
    if (!n)
      throw new FerryError('not_found', `gateway "${gateway}" has no node "${node}"`, {
        hint: `\`ferry node list ${gateway}\` lists them`,
      });
    return { name: n.name, url: `${n.transport === 'tls' ? 'https' : 'http'}://${n.peerAddress}` };
  }
  if (nodeName !== undefined) {
    if (!nodes.some((x) => x.name === nodeName))
      throw new FerryError('not_found', `gateway "${gateway}" has no node "${nodeName}"`);
    return { name: nodeName, url: node };
  }
  const u = new URL(node);
  const host = u.hostname.replace(/^\[|\]$/g, '');
  const port = u.port || (u.protocol === 'https:' ? '443' : '80');
  const n = nodes.find((x) => x.peerAddress === `${host}:${port}`);
  if (!n)
    throw new FerryError('not_found', `no node of gateway "${gateway}" is advertised at ${host}:${port}`, {
      hint: `give the node's name (--node NAME), or add --node-name NAME when you reach it at another address`,
    });
  return { name: n.name, url: node };
}

async function sendToNode(url: string, ca: Buffer | undefined, grant: Grant, box: string): Promise<void> {
  const agents = jsonAgents({ maxSockets: 1, ca });
  try {
    const res = await requestJson(`${url.replace(/\/+$/, '')}/admin/credentials`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', [GRANT_HEADER]: grant.grant },
      body: JSON.stringify({ linkedService: grant.linkedService, version: grant.version, box }),
      agents,
      timeoutMs: 15_000,
      context: `node ${url}`,
    }).catch((err: unknown) => {
      throw new FerryError('unavailable', `cannot reach node ${url}: ${(err as Error).message}`, {
        hint: 'give the node-to-node URL of a running node of the gateway (`ferry node list GATEWAY` shows PEER)',
      });
    });
    if (res.status >= 400)
      throw fromProblem(res.text.length > 0 ? JSON.parse(res.text) : undefined, res.status);
  } finally {
    closeAgents(agents);
  }
}

export function credentialCommands(program: Command): void {
  const cred = program
    .command('credential')
    .description('the secret values of linked services kept in the gateway (--credentials gateway)');

  cred
    .command('set <linkedService>')
    .description(
      'set the secret values of a linked service kept in the gateway: sealed here to the gateway key, so the service never sees them',
    )
    .option(
      '--property <key=value>',
      'a secret property; repeatable (visible in the process list: prefer --stdin)',
      collect,
      [],
    )
    .option('--from-file <file>', 'JSON or YAML object of the secret properties')
    .option('--stdin', 'read a JSON object, or the one secret value, from standard input')
    .option(
      '--node <name|url>',
      'send the values straight to this node (its name, or its node-to-node URL), not through the service',
    )
    .option(
      '--node-name <name>',
      'with --node URL: the node at that URL, when it is not its advertised address',
    )
    .option('--node-ca <file>', "CA certificate (PEM) to verify the node's TLS certificate with")
    .option('--no-wait', 'do not wait for the dispatcher to hold the new version')
    .option('--timeout <seconds>', 'how long to wait for the dispatcher', '30')
    .action(
      async (
        name: string,
        o: {
          property: string[];
          fromFile?: string;
          stdin?: boolean;
          node?: string;
          nodeName?: string;
          nodeCa?: string;
          wait: boolean;
          timeout: string;
        },
        cmd: Command,
      ) => {
        const c = cliContext(cmd);
        const ls = await c.api.get<{
          type: string;
          gateway: string;
          credentials: string;
          properties: Record<string, unknown>;
        }>(`/api/v1/linked-services/${enc(name)}`);
        if (ls.credentials !== 'gateway')
          throw new FerryError('conflict', `linked service "${name}" keeps its credentials in the service`, {
            hint: `recreate it with \`ferry linked-service create ${name} --credentials gateway ...\` to keep them in the gateway`,
          });
        const values = readValues(ls.type, name, o);
        const target = o.node === undefined ? undefined : await nodeTarget(c, ls.gateway, o.node, o.nodeName);
        // A grant for that node only: seen on the wire, it cannot be taken to another node.
        const grant = await c.api.post<Grant>(
          `/api/v1/linked-services/${enc(name)}/credential-grant`,
          target ? { node: target.name } : {},
        );
        // Bound to the endpoint as it is now: nodes send the values to no other (a host changed later
        // needs the credentials set again). Printed, so that the operator sees what they are bound to.
        const endpoint = { type: ls.type, properties: ls.properties };
        const box = sealCredential(grant.gatewayKey, grant, { values, endpoint });
        process.stderr.write(
          `binding ${name}'s credentials to ${ls.type} ${Object.entries(ls.properties)
            .map(([k, v]) => `${k}=${JSON.stringify(v)}`)
            .join(' ')}\n`,
        );
        if (target)
          await sendToNode(
            target.url,
            o.nodeCa === undefined ? undefined : readPemFile(o.nodeCa, '--node-ca'),
            grant,
            box,
          );
        else
          await c.api.post(`/api/v1/linked-services/${enc(name)}/credentials`, {
            version: grant.version,
            box,
          });
        const via = target ? `node ${target.name} (${target.url})` : 'the service (relayed sealed)';
        if (!o.wait) {
          if (c.json) return printJson({ linkedService: name, version: grant.version, holders: [] });
          process.stdout.write(`credentials of ${name}: version ${grant.version} sent to ${via}\n`);
          return;
        }
        const deadline = Date.now() + Number(o.timeout) * 1000;
        let nodes: NodeRow[];
        for (;;) {
          nodes = (await c.api.get<{ nodes: NodeRow[] }>(`/api/v1/gateways/${enc(ls.gateway)}/nodes`)).nodes;
          const up = nodes.filter((n) => n.status !== 'Offline');
          const holds = (n: NodeRow): boolean => (n.credentials.versions[name] ?? 0) >= grant.version;
          const dispatcher = nodes.find((n) => n.role === 'dispatcher');
          if (dispatcher && holds(dispatcher) && up.every(holds)) break;
          if (Date.now() >= deadline) {
            const holders = nodes.filter(holds).map((n) => `${n.name} (${n.status})`);
            throw new FerryError(
              'unavailable',
              `version ${grant.version} of ${name}'s credentials is held by ${holders.length > 0 ? holders.join(', ') : 'no node'}; the dispatcher ${dispatcher ? `${dispatcher.name} does not hold it` : 'is not known'} after ${o.timeout} s`,
              {
                hint:
                  holders.length > 0
                    ? `if ${holders.join(', ')} stays away, set the credentials again`
                    : 'set the credentials again once a node of the gateway is up',
              },
            );
          }
          await new Promise((r) => setTimeout(r, 300));
        }
        const holders = nodes
          .filter((n) => (n.credentials.versions[name] ?? 0) >= grant.version)
          .map((n) => n.name);
        if (c.json) return printJson({ linkedService: name, version: grant.version, holders });
        process.stdout.write(
          `credentials of ${name}: version ${grant.version} set through ${via}; held by ${holders.join(', ')} (${holders.length} of ${nodes.filter((n) => n.status !== 'Offline').length} nodes up)\n`,
        );
      },
    );
}

/**
 * Who this node is: what its data dir remembers (registration, keys, the addresses it last ran
 * with), and its registration with the service on first start. Split in two because the node's
 * parts need its keys and the service's address before its peer port listens, and registering
 * needs that port.
 */
import { cpus, totalmem } from 'node:os';
import { resolve } from 'node:path';
import type { CompiledNodeOptions, NodeOptions } from './node-options.ts';
import { readRegistration, writeRegistration, type NodeRegistration } from './node-state.ts';
import { ServiceClient } from './service-client.ts';
import { FerryError, toFerryError } from '../common/errors.ts';
import type { Logger } from '../common/logger.ts';
import { generateNodeKeys, type NodeKeys } from '../protocol/node-keys.ts';

/**
 * What the data dir knows before the service is asked: the registration of an earlier start, or
 * (first start) the key to register with. `serviceUrl`: the service this node registered with, or
 * registers with now; `keys`: the registration's key pairs, or new ones it registers with.
 */
export type LocalRegistration =
  | { existing: NodeRegistration; serviceUrl: string; keys: NodeKeys }
  | { existing: undefined; key: string; serviceUrl: string; keys: NodeKeys };

/**
 * The options with what the data dir remembers filled in where none were given: the registered
 * name, and the port, listen and advertise addresses the node last ran with.
 */
export function withRemembered(input: NodeOptions): NodeOptions {
  const known = readRegistration(resolve(input.dataDir ?? 'ferry-node'));
  if (!known) return input;
  const port = input.port ?? known.settings?.port;
  const listen = input.listen ?? known.settings?.listen;
  const advertise = input.advertise ?? known.settings?.advertise;
  return {
    ...input,
    name: input.name ?? known.nodeName,
    ...(port === undefined ? {} : { port }),
    ...(listen === undefined ? {} : { listen }),
    ...(advertise === undefined ? {} : { advertise }),
  };
}

/** The data dir's registration and keys; refuses a new name, or a first start without service and key. */
export function localRegistration(o: CompiledNodeOptions): LocalRegistration {
  const existing = readRegistration(o.dataDir);
  if (!existing) {
    if (!o.serviceUrl || !o.key) {
      throw new FerryError(
        'bad_request',
        `this node is not registered yet (no ${o.dataDir}/node.json): pass --service URL and the key (--key-file FILE, env FERRY_NODE_KEY or --key KEY)`,
      );
    }
    return { existing, key: o.key, serviceUrl: o.serviceUrl, keys: generateNodeKeys() };
  }
  if (o.nameGiven && o.name !== existing.nodeName) {
    throw new FerryError(
      'registration_refused',
      `this node is registered as "${existing.nodeName}"; node names cannot change`,
      {
        hint: `drop --name, or run \`ferry node leave --data-dir ${o.dataDir}\` and register again under the new name`,
      },
    );
  }
  if (!existing.keys) {
    // Registered before nodes had keys: make them now; the next heartbeat tells the service.
    existing.keys = generateNodeKeys();
    writeRegistration(o.dataDir, existing);
  }
  return { existing, serviceUrl: existing.serviceUrl, keys: existing.keys };
}

/**
 * The node's registration: the existing one (refused if a --key given belongs to another
 * gateway), or a new one made with the service for the peer port `peerPort`.
 */
export async function register(
  o: CompiledNodeOptions,
  local: LocalRegistration,
  serviceCa: Buffer | undefined,
  version: string,
  peerPort: number,
  log: Logger,
): Promise<NodeRegistration> {
  if (local.existing) {
    const existing = local.existing;
    if (o.key) {
      const gw = await keyGateway(o.key, o.serviceUrl ?? existing.serviceUrl, serviceCa, log);
      if (gw && gw.gatewayId !== existing.gatewayId) {
        throw new FerryError(
          'registration_refused',
          `this machine (data dir ${o.dataDir}) is registered to gateway "${existing.gatewayName}" as node "${existing.nodeName}"; it cannot join gateway "${gw.gatewayName}"`,
          {
            hint: `to move it, run \`ferry node leave --data-dir ${o.dataDir}\` (removes it from "${existing.gatewayName}"), then start it with the key of "${gw.gatewayName}"`,
          },
        );
      }
    }
    return existing;
  }
  const client = new ServiceClient(local.serviceUrl, undefined, serviceCa);
  try {
    const res = await client.register({
      key: local.key,
      name: o.name,
      version,
      peerHost: o.advertise,
      peerPort,
      // A new node starts plain; its heartbeats say how it runs once it hears the gateway's mode.
      tls: false,
      cores: cpus().length,
      memoryBytes: totalmem(),
      defaultLimit: o.defaultLimit,
      signPublicKey: local.keys.signPublicKey,
      sealPublicKey: local.keys.sealPublicKey,
    });
    const reg: NodeRegistration = {
      serviceUrl: local.serviceUrl,
      ...res,
      nodeName: o.name,
      registeredAt: new Date().toISOString(),
      keys: local.keys,
    };
    writeRegistration(o.dataDir, reg);
    log.info({ gateway: res.gatewayName, node: o.name }, 'registered');
    return reg;
  } finally {
    await client.close();
  }
}

/** Keeps the port, listen and advertise addresses this start runs with, for the next one. */
export function rememberSettings(o: CompiledNodeOptions, registration: NodeRegistration): void {
  const settings = { port: o.port, listen: o.listen, advertise: o.advertise };
  if (
    registration.settings?.port !== settings.port ||
    registration.settings.listen !== settings.listen ||
    registration.settings.advertise !== settings.advertise
  ) {
    registration.settings = settings;
    writeRegistration(o.dataDir, registration);
  }
}

/**
 * The gateway a key belongs to, asked of the service; undefined (and a warning) when it cannot say:
 * an already registered node then starts with its registration as it is.
 */
async function keyGateway(
  key: string,
  serviceUrl: string,
  serviceCa: Buffer | undefined,
  log: Logger,
): Promise<{ gatewayId: string; gatewayName: string } | undefined> {
  const client = new ServiceClient(serviceUrl, undefined, serviceCa);
  try {
    return await client.keyGateway(key);
  } catch (err) {
    log.warn(
      { err: toFerryError(err).message },
      'the --key given was not checked; using the existing registration',
    );
    return undefined;
  } finally {
    await client.close();
  }
}

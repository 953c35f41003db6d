/**
 * `ferry node`: one node process. Registers on first start (or reuses its data dir's registration),
 * serves the node-to-node port, heartbeats the service every second, works as a worker, and works as
 * the dispatcher while the service says so. SIGTERM drains: no new tasks, running ones get a grace
 * period, then the node tells the service it is leaving (so its role moves at once) and stops.
 */
import { cpus, totalmem } from 'node:os';
import { setTimeout as sleep } from 'node:timers/promises';
import type { Server } from 'node:http';
import { resolve } from 'node:path';
import { compileNodeOptions, type CompiledNodeOptions, type NodeOptions } from './node-options.ts';
import {
  readRegistration,
  writeLocalStatus,
  writeRegistration,
  type NodeRegistration,
} from './node-state.ts';
import { ServiceClient } from './service-client.ts';
import { PeerClient } from './peer-client.ts';
import { startPeerServer } from './peer-server.ts';
import { Worker } from './worker.ts';
import { Dispatcher } from './dispatcher.ts';
import { executeTask } from './task-executor.ts';
import { UploadBudget } from '../common/upload-budget.ts';
import { openEndpoint, secretOpener } from './task-secrets.ts';
import { ConnectionTester } from './connection-tester.ts';
import { HostMetrics } from './host-metrics.ts';
import { probePeers } from './peer-prober.ts';
import { createNodeMetrics } from './node-metrics.ts';
import { createLogger, type Logger } from '../common/logger.ts';
import { FerryError, toFerryError } from '../common/errors.ts';
import { ferryVersion } from '../common/version.ts';
import { readPemFile } from '../common/tls.ts';
import type { HeartbeatResponseT, PeerReachT, PeerViewT } from '../protocol/agent.ts';
import { DispatchRequest, signingKey, type DispatchRequestT, type PingResponseT } from '../protocol/peer.ts';
import { leaseVouches } from '../protocol/dispatcher-lease.ts';
import { NOT_A_MEMBER, PeerAuth } from './peer-auth.ts';
import type { KeyObject } from 'node:crypto';
import { validator } from '../protocol/validate.ts';
import { generateNodeKeys, parsePublicKey } from '../protocol/node-keys.ts';

const dispatchValidator = validator(DispatchRequest);

/**
 * The largest dispatch body taken. A task spec is small (a few KiB with the default 64 files per
 * task), but a file source may put up to 100,000 files in one task, about 100 bytes each with a
 * typical path: this leaves room for that. Only a current member's signed dispatch is ever read.
 */
export const MAX_DISPATCH_BODY = 16 * 1024 * 1024;

export interface RunningNode {
  registration: NodeRegistration;
  peerPort: number;
  /** Resolves when the node stopped on its own (deleted from the gateway, or a fatal error). */
  stopped: Promise<FerryError | undefined>;
  /** Drains (up to the grace period), tells the service it is leaving, and stops. */
  shutdown(graceMs?: number): Promise<void>;
}

async function register(
  o: CompiledNodeOptions,
  serviceCa: Buffer | undefined,
  version: string,
  peerPort: number,
  log: Logger,
): Promise<NodeRegistration> {
  const existing = readRegistration(o.dataDir);
  if (existing) {
    if (o.nameGiven && o.name !== existing.nodeName) {
      throw new FerryError(
        'registration_refused',
        `this node is registered as "${existing.nodeName}"; node names cannot change`,
        {
          hint: `drop --name, or run \`ferry node leave --data-dir ${o.dataDir}\` and register again under the new name`,
        },
      );
    }
    if (o.key) {
      const client = new ServiceClient(o.serviceUrl ?? existing.serviceUrl, undefined, serviceCa);
      try {
        const gw = await client.keyGateway(o.key);
        if (gw.gatewayId !== existing.gatewayId) {
          throw new FerryError(
            'registration_refused',
            `this machine (data dir ${o.dataDir}) is registered to gateway "${existing.gatewayName}" as node "${existing.nodeName}"; it cannot join gateway "${gw.gatewayName}"`,
            {
              hint: `to move it, run \`ferry node leave --data-dir ${o.dataDir}\` (removes it from "${existing.gatewayName}"), then start it with the key of "${gw.gatewayName}"`,
            },
          );
        }
      } catch (err) {
        const fe = toFerryError(err);
        if (fe.code === 'registration_refused' && fe.message.startsWith('this machine')) throw fe;
        log.warn({ err: fe.message }, 'the --key given was not checked; using the existing registration');
      } finally {
        await client.close();
      }
    }
    if (!existing.keys) {
      // Registered before nodes had keys: make them now; the next heartbeat tells the service.
      existing.keys = generateNodeKeys();
      writeRegistration(o.dataDir, existing);
    }
    return existing;
  }
  if (!o.serviceUrl || !o.key) {
    throw new FerryError(
      'bad_request',
      `this node is not registered yet (no ${o.dataDir}/node.json): pass --service URL and the key (--key-file FILE, env FERRY_NODE_KEY or --key KEY)`,
    );
  }
  const client = new ServiceClient(o.serviceUrl, undefined, serviceCa);
  const keys = generateNodeKeys();
  try {
    const res = await client.register({
      key: o.key,
      name: o.name,
      version,
      peerHost: o.advertise,
      peerPort,
      tls: o.tls !== undefined,
      cores: cpus().length,
      memoryBytes: totalmem(),
      defaultLimit: o.defaultLimit,
      signPublicKey: keys.signPublicKey,
      sealPublicKey: keys.sealPublicKey,
    });
    const reg: NodeRegistration = {
      serviceUrl: o.serviceUrl,
      ...res,
      nodeName: o.name,
      registeredAt: new Date().toISOString(),
      keys,
    };
    writeRegistration(o.dataDir, reg);
    log.info({ gateway: res.gatewayName, node: o.name }, 'registered');
    return reg;
  } finally {
    await client.close();
  }
}

/**
 * The options with what the data dir remembers filled in where none were given: the registered
 * name, and the port, listen and advertise addresses the node last ran with.
 */
export function withRemembered(input: NodeOptions): NodeOptions {
  const known = readRegistration(resolve(input.dataDir ?? 'ferry-node'));
  if (!known) return input;
  return {
    ...input,
    name: input.name ?? known.nodeName,
    port: input.port ?? known.settings?.port,
    listen: input.listen ?? known.settings?.listen,
    advertise: input.advertise ?? known.settings?.advertise,
  };
}

export async function startNode(input: NodeOptions): Promise<RunningNode> {
  const o = compileNodeOptions(withRemembered(input));
  const version = o.versionOverride ?? ferryVersion();
  const log = createLogger('ferry-node', o.logLevel).child({ node: o.name });
  const metrics = createNodeMetrics();
  const serviceCa = o.serviceCa === undefined ? undefined : readPemFile(o.serviceCa, '--service-ca');
  let reg: NodeRegistration | undefined;

  // The peer server starts before the worker exists (registration needs its port).
  const holder: { worker?: Worker } = {};
  // Who may call the peer port: the members our latest heartbeat lists (none until the first one).
  const peerAuth = new PeerAuth();
  // The service's key for dispatcher lease tokens, from the latest heartbeat.
  const lease: { keyText?: string; key?: KeyObject } = {};
  const peerServer = await startPeerServer(
    { host: o.listen, port: o.port, tls: o.tls },
    {
      auth: peerAuth,
      metrics: async () => ({
        contentType: metrics.registry.contentType,
        body: await metrics.registry.metrics(),
      }),
      routes: {
        'GET /v1/ping': {
          maxBody: 0,
          handle: async (): Promise<PingResponseT> => ({
            nodeId: reg?.nodeId ?? '',
            name: reg?.nodeName ?? o.name,
            gatewayId: reg?.gatewayId ?? '',
            running: holder.worker?.runningCount ?? 0,
            limit: holder.worker?.limit ?? 0,
            draining: holder.worker?.draining ?? false,
          }),
        },
        'POST /v1/dispatch': {
          maxBody: MAX_DISPATCH_BODY,
          handle: async (body, caller) => {
            if (!holder.worker || !reg) throw new FerryError('unavailable', 'the node is starting');
            const req = dispatchValidator.parse(body, 'dispatch');
            const vouched = leaseVouches(req.lease, lease.key, {
              gatewayId: reg.gatewayId,
              senderNodeId: caller.nodeId,
              epoch: req.epoch,
            });
            return holder.worker.accept(req, vouched);
          },
        },
      },
    },
  );
  let server: Server | undefined = peerServer.server;
  try {
    reg = await register(o, serviceCa, version, peerServer.port, log);
  } catch (err) {
    server.close();
    throw err;
  }
  const registration = reg;
  const settings = { port: o.port, listen: o.listen, advertise: o.advertise };
  if (
    registration.settings?.port !== settings.port ||
    registration.settings.listen !== settings.listen ||
    registration.settings.advertise !== settings.advertise
  ) {
    registration.settings = settings;
    writeRegistration(o.dataDir, registration);
  }
  const nodeKeys = registration.keys ?? generateNodeKeys(); // register() always leaves keys
  peerAuth.setSelf({ gatewayId: registration.gatewayId, nodeId: registration.nodeId });
  const service = new ServiceClient(registration.serviceUrl, registration.nodeToken, serviceCa);
  const peers = new PeerClient(
    {
      gatewayId: registration.gatewayId,
      nodeId: registration.nodeId,
      signKey: signingKey(nodeKeys.signPrivateKey),
    },
    o.tls?.ca,
  );

  let heartbeatMs = 1000;
  let lastHb: HeartbeatResponseT | undefined;
  let reach: PeerReachT[] = [];
  let shuttingDown = false;
  let lastError: string | null = null;
  let resolveStopped: (e: FerryError | undefined) => void = () => {};
  const stopped = new Promise<FerryError | undefined>((r) => (resolveStopped = r));
  const hostMetrics = new HostMetrics();

  const dispatcher = new Dispatcher({
    selfId: registration.nodeId,
    claim: (req, signal) => service.claim(req, signal),
    release: (id, reason) => service.release(id, reason),
    deliver: async (peer: PeerViewT | 'self', req: DispatchRequestT) => {
      if (peer === 'self') {
        if (!holder.worker) throw new FerryError('unavailable', 'worker not started');
        // This node's own heartbeat made it dispatcher under this epoch: the service's word.
        holder.worker.accept(req, true);
      } else {
        await peers.call(peer, 'POST', '/v1/dispatch', req, 5000);
      }
      metrics.dispatched.inc();
    },
    self: () => ({
      eligible: !!holder.worker && !holder.worker.draining && lastHb?.status === 'Online',
      limit: holder.worker?.limit ?? 0,
    }),
    log,
    // A claim offers the workers (slots) known when it was sent and holds them for its whole
    // long-poll, so keep it short: a worker that joins, is resumed or gets a higher limit is offered
    // within about a heartbeat, instead of idling while tasks wait in the queue.
    claimWaitMs: 1_000,
  });

  const theWorker = new Worker({
    service,
    execute: executeTask,
    openSecrets: secretOpener(nodeKeys.sealPrivateKey),
    allowedRoots: o.allowPaths,
    uploadBudget: new UploadBudget(),
    log,
    progressIntervalMs: 1000,
    onChange: () => {
      metrics.running.set(holder.worker?.runningCount ?? 0);
      dispatcher.poke();
    },
  });
  theWorker.limit = o.defaultLimit;
  holder.worker = theWorker;

  const tester = new ConnectionTester({
    report: (testId, report) => service.connectionTestReport(testId, report),
    open: (endpoint, testId) => openEndpoint(nodeKeys.sealPrivateKey, endpoint, testId, 'test'),
    allowedRoots: o.allowPaths,
    log,
  });

  const writeStatus = (connected: boolean): void => {
    try {
      writeLocalStatus(o.dataDir, {
        at: new Date().toISOString(),
        gateway: registration.gatewayName,
        node: registration.nodeName,
        service: registration.serviceUrl,
        connected,
        lastError,
        role: lastHb?.role ?? 'unknown',
        status: lastHb?.status ?? 'unknown',
        statusHint: lastHb?.statusHint ?? '',
        epoch: lastHb?.epoch ?? 0,
        running: theWorker.runningCount,
        limit: theWorker.limit,
        draining: theWorker.draining,
        pid: process.pid,
        peerUrl: `${o.tls ? 'https' : 'http'}://${o.advertise}:${peerServer.port}`,
      });
    } catch (err) {
      log.warn({ err: (err as Error).message }, 'cannot write status.json');
    }
  };

  const beat = async (leaving = false): Promise<void> => {
    const res = await service.heartbeat({
      version,
      metrics: hostMetrics.sample(),
      running: theWorker.runningIds(),
      defaultLimit: o.defaultLimit,
      draining: theWorker.draining,
      upgrading: false,
      tls: o.tls !== undefined,
      peerHost: o.advertise,
      peerPort: peerServer.port,
      reach,
      ...(leaving ? { leaving: true } : {}),
      signPublicKey: nodeKeys.signPublicKey,
      sealPublicKey: nodeKeys.sealPublicKey,
    });
    lastHb = res;
    lastError = null;
    // Membership first: a deleted node is refused from now on; the lease key checks dispatches.
    peerAuth.setMembers(res.peers);
    if (res.servicePublicKey !== lease.keyText) {
      lease.key = parsePublicKey(res.servicePublicKey, 'ed25519', 'servicePublicKey');
      lease.keyText = res.servicePublicKey;
    }
    heartbeatMs = res.heartbeatIntervalMs;
    theWorker.limit = res.limit ?? o.defaultLimit; // the operator's limit, else this node's own
    metrics.limit.set(theWorker.limit);
    if (!shuttingDown) theWorker.draining = res.drain;
    theWorker.observeEpoch(res.epoch);
    if (res.revoked.length > 0) theWorker.revoke(res.revoked);
    metrics.dispatcher.set(res.role === 'dispatcher' ? 1 : 0);
    if (!leaving && !shuttingDown) dispatcher.update(res.role, res.epoch, res.peers, res.dispatcherLease);
    if (res.connectionTests && !shuttingDown) tester.take(res.connectionTests);
    writeStatus(true);
  };

  const loop = (async () => {
    let failures = 0;
    while (!shuttingDown) {
      const started = Date.now();
      try {
        await beat();
        failures = 0;
        // Probe after the heartbeat, so the next one carries fresh reachability.
        if (lastHb) {
          reach = await probePeers(lastHb.role, lastHb.dispatcherNodeId, lastHb.peers, async (target) => {
            try {
              await peers.call(target, 'GET', '/v1/ping', undefined, o.probeTimeoutMs);
            } catch (err) {
              // The peer answered but has not heard of this node yet (it learns members from its
              // own heartbeat, up to an interval after ours): it is reachable all the same.
              const fe = toFerryError(err);
              if (!(fe.code === 'unauthorized' && fe.message === NOT_A_MEMBER)) throw fe;
            }
          });
        }
      } catch (err) {
        const fe = toFerryError(err);
        metrics.heartbeatFailures.inc();
        lastError = fe.message;
        if (fe.code === 'unauthorized') {
          log.error({ err: fe.message }, 'the service no longer knows this node; stopping');
          dispatcher.stop();
          resolveStopped(fe);
          return;
        }
        failures++;
        // Without the service, the dispatcher cannot claim anything and must not act on an old lease.
        if (failures >= 3) dispatcher.stop();
        if (failures === 1 || failures % 10 === 0)
          log.warn({ err: fe.message, hint: fe.hint }, 'heartbeat failed; retrying');
        writeStatus(false);
      }
      await sleep(Math.max(0, heartbeatMs - (Date.now() - started)));
    }
  })();

  log.info(
    { gateway: registration.gatewayName, peerPort: peerServer.port, limit: o.defaultLimit },
    'node running',
  );

  const closeAll = async (): Promise<void> => {
    dispatcher.stop();
    tester.stop();
    await loop.catch(() => undefined);
    await new Promise<void>((r) => (server ? server.close(() => r()) : r()));
    server = undefined;
    await peers.close();
    await service.close();
  };

  void stopped.then(async (fatal) => {
    if (fatal) {
      shuttingDown = true;
      theWorker.revoke(theWorker.runningIds());
      await closeAll();
    }
  });

  return {
    registration,
    peerPort: peerServer.port,
    stopped,
    shutdown: async (graceMs = o.drainGraceMs) => {
      if (shuttingDown) return;
      shuttingDown = true;
      theWorker.draining = true;
      dispatcher.stop();
      log.info({ running: theWorker.runningCount, graceMs }, 'draining before shutdown');
      await beat().catch(() => undefined); // tell the service at once: no new tasks here
      await theWorker.drain(graceMs);
      await beat(true).catch((err: unknown) =>
        log.warn({ err: toFerryError(err).message }, 'could not tell the service this node is leaving'),
      );
      await closeAll();
      resolveStopped(undefined);
      log.info('stopped');
    },
  };
}

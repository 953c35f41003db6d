/**
 * `ferry node`: one node process. Registers on first start (or reuses its data dir's registration),
 * serves the node-to-node port, heartbeats the service every second, works as a worker, and works as
 * the dispatcher while the service says so. SIGTERM drains: no new tasks, running ones get a grace
 * period, then the node tells the service it is leaving (so its role moves at once) and stops.
 *
 * This module only wires the parts: the worker (which the peer port hands dispatches to), the
 * dispatcher (which offers the worker's slots and delivers to it), and the heartbeat loop, whose
 * replies each part subscribes to.
 */
import type { Server } from 'node:http';
import { compileNodeOptions, type NodeOptions } from './node-options.ts';
import { writeLocalStatus, type NodeRegistration } from './node-state.ts';
import { localRegistration, register, rememberSettings, withRemembered } from './node-registration.ts';
import { ServiceClient } from './service-client.ts';
import { PeerClient } from './peer-client.ts';
import { startPeerServer } from './peer-server.ts';
import { LeaseKey, peerRoutes } from './peer-routes.ts';
import { Worker } from './worker.ts';
import { Dispatcher } from './dispatcher.ts';
import { executeTask } from './task-executor.ts';
import { openEndpoint, secretOpener } from './task-secrets.ts';
import { ConnectionTester } from './connection-tester.ts';
import { HostMetrics } from './host-metrics.ts';
import { pingOver, probePeers } from './peer-prober.ts';
import { createNodeMetrics } from './node-metrics.ts';
import { HeartbeatLoop } from './heartbeat-loop.ts';
import { PeerAuth } from './peer-auth.ts';
import { createLogger } from '../common/logger.ts';
import { toFerryError, type FerryError } from '../common/errors.ts';
import { ferryVersion } from '../common/version.ts';
import { readPemFile } from '../common/tls.ts';
import type { HeartbeatResponseT, PeerReachT } from '../protocol/agent.ts';
import { signingKey } from '../protocol/peer.ts';

export interface RunningNode {
  registration: NodeRegistration;
  peerPort: number;
  /** Resolves when the node stopped on its own (deleted from the gateway, or a fatal error). */
  stopped: Promise<FerryError | undefined>;
  /** Drains (up to the grace period), tells the service it is leaving, and stops. */
  shutdown(graceMs?: number): Promise<void>;
}

export async function startNode(input: NodeOptions): Promise<RunningNode> {
  const o = compileNodeOptions(withRemembered(input));
  const version = o.versionOverride ?? ferryVersion();
  const log = createLogger('ferry-node', o.logLevel).child({ node: o.name });
  const metrics = createNodeMetrics();
  const serviceCa = o.serviceCa === undefined ? undefined : readPemFile(o.serviceCa, '--service-ca');
  const local = localRegistration(o);
  const nodeKeys = local.keys;
  // The token comes with the registration (at once, unless this is the first start).
  const service = new ServiceClient(local.serviceUrl, local.existing?.nodeToken, serviceCa);

  const worker = new Worker({
    service,
    execute: executeTask,
    openSecrets: secretOpener(nodeKeys.sealPrivateKey),
    allowedRoots: o.allowPaths,
    log,
    progressIntervalMs: 1000,
  });
  worker.limit = o.defaultLimit;
  worker.onChange(() => metrics.running.set(worker.runningCount));

  // Who may call the peer port: the members our latest heartbeat lists (none until the first one).
  const peerAuth = new PeerAuth();
  const leaseKey = new LeaseKey();
  const peerServer = await startPeerServer(
    { host: o.listen, port: o.port, tls: o.tls },
    {
      auth: peerAuth,
      metrics: async () => ({
        contentType: metrics.registry.contentType,
        body: await metrics.registry.metrics(),
      }),
      routes: peerRoutes({ worker, name: o.name, leaseKey }),
    },
  );
  let server: Server | undefined = peerServer.server;
  let registration: NodeRegistration;
  try {
    registration = await register(o, local, serviceCa, version, peerServer.port, log);
  } catch (err) {
    server.close();
    await service.close();
    throw err;
  }
  service.setToken(registration.nodeToken);
  rememberSettings(o, registration);
  peerAuth.setSelf({ gatewayId: registration.gatewayId, nodeId: registration.nodeId });
  const peers = new PeerClient(
    {
      gatewayId: registration.gatewayId,
      nodeId: registration.nodeId,
      signKey: signingKey(nodeKeys.signPrivateKey),
    },
    o.tls?.ca,
  );

  let lastHb: HeartbeatResponseT | undefined;
  let reach: PeerReachT[] = [];
  let shuttingDown = false;
  let leaving = false;
  let lastError: string | null = null;
  let resolveStopped: (e: FerryError | undefined) => void = () => {};
  const stopped = new Promise<FerryError | undefined>((r) => (resolveStopped = r));
  const hostMetrics = new HostMetrics();

  const dispatcher = new Dispatcher({
    selfId: registration.nodeId,
    claim: (req, signal) => service.claim(req, signal),
    release: (id, reason) => service.release(id, reason),
    deliver: async (peer, req) => {
      // To itself: this node's own heartbeat made it dispatcher under this epoch, the service's word.
      if (peer === 'self') worker.accept(req, true);
      else await peers.call(peer, 'POST', '/v1/dispatch', req, 5000);
      metrics.dispatched.inc();
    },
    self: () => ({ eligible: !worker.draining && lastHb?.status === 'Online', limit: worker.limit }),
    log,
    // A claim offers the workers (slots) known when it was sent and holds them for its whole
    // long-poll, so keep it short: a worker that joins, is resumed or gets a higher limit is offered
    // within about a heartbeat, instead of idling while tasks wait in the queue.
    claimWaitMs: 1_000,
  });
  worker.onChange(() => dispatcher.poke());

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
        running: worker.runningCount,
        limit: worker.limit,
        draining: worker.draining,
        pid: process.pid,
        peerUrl: `${o.tls ? 'https' : 'http'}://${o.advertise}:${peerServer.port}`,
      });
    } catch (err) {
      log.warn({ err: (err as Error).message }, 'cannot write status.json');
    }
  };

  const heartbeat = new HeartbeatLoop<HeartbeatResponseT>({
    send: () =>
      service.heartbeat({
        version,
        metrics: hostMetrics.sample(),
        running: worker.runningIds(),
        defaultLimit: o.defaultLimit,
        draining: worker.draining,
        upgrading: false,
        tls: o.tls !== undefined,
        peerHost: o.advertise,
        peerPort: peerServer.port,
        reach,
        ...(leaving ? { leaving: true } : {}),
        signPublicKey: nodeKeys.signPublicKey,
        sealPublicKey: nodeKeys.sealPublicKey,
      }),
    intervalMs: 1000,
    log,
  });
  // Each reply, to the parts that act on it. Membership first: a deleted node is refused from now
  // on; the lease key checks dispatches.
  heartbeat.onReply((res) => {
    lastHb = res;
    lastError = null;
    peerAuth.setMembers(res.peers);
    leaseKey.update(res.servicePublicKey);
  });
  heartbeat.onReply((res) => {
    worker.limit = res.limit ?? o.defaultLimit; // the operator's limit, else this node's own
    metrics.limit.set(worker.limit);
    if (!shuttingDown) worker.draining = res.drain;
    worker.observeEpoch(res.epoch);
    if (res.revoked.length > 0) worker.revoke(res.revoked);
  });
  heartbeat.onReply((res) => {
    metrics.dispatcher.set(res.role === 'dispatcher' ? 1 : 0);
    if (!shuttingDown) dispatcher.update(res.role, res.epoch, res.peers, res.dispatcherLease);
  });
  heartbeat.onReply((res) => {
    if (res.connectionTests && !shuttingDown) tester.take(res.connectionTests);
  });
  heartbeat.onReply(() => writeStatus(true));
  // Probe after the heartbeat, so the next one carries fresh reachability.
  const ping = pingOver(peers, o.probeTimeoutMs);
  heartbeat.onReply(async (res) => {
    if (shuttingDown) return;
    reach = await probePeers(res.role, res.dispatcherNodeId, res.peers, ping);
  });
  heartbeat.onMissed((err) => {
    metrics.heartbeatFailures.inc();
    lastError = err.message;
    writeStatus(false);
  });
  heartbeat.onLost(({ error, forGood }) => {
    // Without the service, the dispatcher cannot claim anything and must not act on an old lease.
    dispatcher.stop();
    if (forGood) {
      metrics.heartbeatFailures.inc();
      resolveStopped(error);
    }
  });
  heartbeat.start();

  log.info(
    { gateway: registration.gatewayName, peerPort: peerServer.port, limit: o.defaultLimit },
    'node running',
  );

  const closeAll = async (): Promise<void> => {
    dispatcher.stop();
    tester.stop();
    await heartbeat.stop().catch(() => undefined);
    await new Promise<void>((r) => (server ? server.close(() => r()) : r()));
    server = undefined;
    await peers.close();
    await service.close();
  };

  void stopped.then(async (fatal) => {
    if (fatal) {
      shuttingDown = true;
      worker.revoke(worker.runningIds());
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
      worker.draining = true;
      dispatcher.stop();
      // The loop beats no more: the two heartbeats below tell the service at once.
      void heartbeat.stop();
      log.info({ running: worker.runningCount, graceMs }, 'draining before shutdown');
      await heartbeat.beat().catch(() => undefined); // no new tasks here
      await worker.drain(graceMs);
      leaving = true;
      await heartbeat
        .beat()
        .catch((err: unknown) =>
          log.warn({ err: toFerryError(err).message }, 'could not tell the service this node is leaving'),
        );
      await closeAll();
      resolveStopped(undefined);
      log.info('stopped');
    },
  };
}

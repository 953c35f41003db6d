/**
 * `ferry node`: one node process. Registers on first start (or reuses its data dir's registration),
 * serves the node-to-node port, heartbeats the service every second, works as a worker, and works as
 * the dispatcher while the service says so. SIGTERM drains: no new tasks, running ones get a grace
 * period, then the node tells the service it is leaving (so its role moves at once) and stops.
 *
 * This module only wires the parts. startNode makes what must exist before the peer port listens
 * (the worker, to which the port hands dispatches), starts the port, registers (which needs the
 * port), and hands the parts to a NodeAgent: it adds the dispatcher half (which offers the worker's
 * slots and hands attempts to it), the connection tests and the heartbeat loop, whose replies each
 * part subscribes to.
 */
import { compileNodeOptions, type CompiledNodeOptions, type NodeOptions } from './node-options.ts';
import { writeLocalStatus, type NodeRegistration } from './node-state.ts';
import { localRegistration, register, rememberSettings, withRemembered } from './node-registration.ts';
import { ServiceClient } from './service-client.ts';
import { PeerClient } from './peer-client.ts';
import { startPeerServer, type PeerServer } from './peer-server.ts';
import { NodeTls } from './node-tls.ts';
import { LeaseKey, peerRoutes } from './peer-routes.ts';
import { Worker } from './worker.ts';
import { Dispatcher } from './dispatcher.ts';
import { executeTask } from './task-executor.ts';
import { UploadBudget } from '../common/upload-budget.ts';
import { openEndpoint, secretOpener } from './task-secrets.ts';
import { ConnectionTester } from './connection-tester.ts';
import { HostMetrics } from './host-metrics.ts';
import { pingOver, probePeers } from './peer-prober.ts';
import { createNodeMetrics, type NodeMetrics } from './node-metrics.ts';
import { HeartbeatLoop } from './heartbeat-loop.ts';
import { PeerAuth } from './peer-auth.ts';
import { CredentialStore, removeCredentialSet } from './credential-store.ts';
import { CredentialSync } from './credential-sync.ts';
import { credentialRoutes } from './credential-routes.ts';
import { GrantAuth } from './grant-auth.ts';
import type { PeerHandlers } from './peer-server.ts';
import { createLogger, type Logger } from '../common/logger.ts';
import { toFerryError, type FerryError } from '../common/errors.ts';
import { ferryVersion } from '../common/version.ts';
import { readPemFile } from '../common/tls.ts';
import type { HeartbeatRequestT, HeartbeatResponseT, MetricsT, PeerReachT } from '../protocol/agent.ts';
import { signingKey } from '../protocol/peer.ts';
import type { NodeKeys } from '../protocol/node-keys.ts';

export interface RunningNode {
  registration: NodeRegistration;
  peerPort: number;
  /** Resolves when the node stopped on its own (deleted from the gateway, or a fatal error). */
  stopped: Promise<FerryError | undefined>;
  /** Drains (up to the grace period), tells the service it is leaving, and stops. */
  shutdown(graceMs?: number): Promise<void>;
}

/** Starts a node with `input` (and what its data dir remembers); resolves once it is registered. */
export async function startNode(input: NodeOptions): Promise<RunningNode> {
  const o = compileNodeOptions(withRemembered(input));
  const log = createLogger('ferry-node', o.logLevel).child({ node: o.name });
  const metrics = createNodeMetrics();
  const serviceCa = o.serviceCa === undefined ? undefined : readPemFile(o.serviceCa, '--service-ca');
  const local = localRegistration(o);
  // The token comes with the registration (at once, unless this is the first start).
  const service = new ServiceClient(local.serviceUrl, local.existing?.nodeToken, serviceCa);
  // A data dir registering anew (its node.json gone) must not carry another registration's credentials.
  if (local.existing === undefined) removeCredentialSet(o.dataDir);
  const credentials = new CredentialStore(o.dataDir);

  const worker = new Worker({
    service,
    execute: executeTask,
    openSecrets: secretOpener({ sealPrivateKey: local.keys.sealPrivateKey, credentials }),
    allowedRoots: o.allowPaths,
    uploadBudget: new UploadBudget(),
    log,
    progressIntervalMs: 1000,
  });
  worker.limit = o.defaultLimit;
  worker.onChange(() => metrics.setRunning(worker.runningCount));

  // Who may call the peer port: the members our latest heartbeat lists (none until the first one).
  const peerAuth = new PeerAuth();
  const leaseKey = new LeaseKey();
  // Its certificate (the user's, or the gateway CA's kept in the data dir) and how it runs its port.
  const tls = new NodeTls({ dataDir: o.dataDir, user: o.tls, log });
  tls.load(Date.now());
  const handlers: PeerHandlers = {
    auth: peerAuth,
    metrics: async () => ({
      contentType: metrics.registry.contentType,
      body: await metrics.registry.metrics(),
    }),
    // The credential routes join once the node knows its gateway (after registering).
    routes: peerRoutes({ worker, name: o.name, leaseKey }),
    acceptsPlain: () => tls.acceptsPlain,
  };
  const peerServer = await startPeerServer({ host: o.listen, port: o.port }, handlers);
  if (tls.material) peerServer.setTls(tls.material);
  tls.onMaterial((m) => peerServer.setTls(m));
  const version = o.versionOverride ?? ferryVersion();
  let registration: NodeRegistration;
  try {
    registration = await register(o, local, serviceCa, version, peerServer.port, log);
  } catch (err) {
    await peerServer.close();
    await service.close();
    throw err;
  }
  service.setToken(registration.nodeToken);
  rememberSettings(o, registration);
  peerAuth.setSelf({ gatewayId: registration.gatewayId, nodeId: registration.nodeId });
  const gatewayKey = { current: null as string | null };
  Object.assign(
    handlers.routes,
    credentialRoutes({
      store: credentials,
      selfId: registration.nodeId,
      gatewayId: registration.gatewayId,
      sealPrivateKey: local.keys.sealPrivateKey,
      leaseKey,
      peerAuth,
      epoch: () => worker.epoch,
      gatewayKey: () => gatewayKey.current,
      log,
    }),
  );
  handlers.grants = new GrantAuth(() => leaseKey.key, {
    gatewayId: registration.gatewayId,
    nodeId: registration.nodeId,
  });

  const node = new NodeAgent({
    o,
    version,
    log,
    metrics,
    keys: local.keys,
    registration,
    service,
    worker,
    peerAuth,
    leaseKey,
    peerServer,
    credentials,
    gatewayKey,
    tls,
  });
  node.start();
  return node;
}

/** What a registered node is made of, once its peer port listens. */
interface NodeParts {
  o: CompiledNodeOptions;
  version: string;
  log: Logger;
  metrics: NodeMetrics;
  keys: NodeKeys;
  registration: NodeRegistration;
  service: ServiceClient;
  worker: Worker;
  peerAuth: PeerAuth;
  leaseKey: LeaseKey;
  credentials: CredentialStore;
  /** The gateway credential key the latest heartbeat named (credential-routes.ts reads it). */
  gatewayKey: { current: string | null };
  peerServer: PeerServer;
  tls: NodeTls;
}

/**
 * The registered node: its worker, its dispatcher half and its connection tests, kept up to date
 * by the heartbeat loop, and its shutdown.
 */
class NodeAgent implements RunningNode {
  readonly registration: NodeRegistration;
  readonly peerPort: number;
  readonly stopped: Promise<FerryError | undefined>;
  readonly #p: NodeParts;
  readonly #peers: PeerClient;
  readonly #dispatcher: Dispatcher;
  readonly #tester: ConnectionTester;
  readonly #credentialSync: CredentialSync;
  readonly #heartbeat: HeartbeatLoop<HeartbeatResponseT>;
  readonly #hostMetrics = new HostMetrics();
  /** The figures the last heartbeat carried (the node's /metrics shows them). */
  #lastSample: MetricsT | undefined;
  #resolveStopped: (e: FerryError | undefined) => void = () => {};
  #server: PeerServer | undefined;
  #lastHb: HeartbeatResponseT | undefined;
  #lastError: string | null = null;
  /** Peer reachability from the probe after the last heartbeat, for the next one. */
  #reach: PeerReachT[] = [];
  #shuttingDown = false;
  #leaving = false;

  constructor(p: NodeParts) {
    const { o, log, metrics, registration, service, worker } = p;
    this.#p = p;
    this.registration = registration;
    this.peerPort = p.peerServer.port;
    this.#server = p.peerServer;
    this.stopped = new Promise((r) => (this.#resolveStopped = r));
    const peers = new PeerClient(
      {
        gatewayId: registration.gatewayId,
        nodeId: registration.nodeId,
        signKey: signingKey(p.keys.signPrivateKey),
      },
      { sendsTls: () => p.tls.sendsTls, material: p.tls.material },
    );
    p.tls.onMaterial((m) => peers.setTls(m));
    this.#peers = peers;
    this.#dispatcher = new Dispatcher({
      selfId: registration.nodeId,
      claim: (req, signal) => service.claim(req, signal),
      release: (id, reason) => service.release(id, reason),
      deliver: async (peer, req) => {
        // To itself: this node's own heartbeat made it dispatcher under this epoch, the service's word.
        if (peer === 'self') worker.accept(req, true);
        else await peers.call(peer, 'POST', '/v1/dispatch', req, 5000);
        metrics.dispatched.inc();
      },
      self: () => ({ eligible: !worker.draining && this.#lastHb?.status === 'Online', limit: worker.limit }),
      log,
      // A claim offers the workers (slots) known when it was sent and holds them for its whole
      // long-poll, so keep it short: a worker that joins, is resumed or gets a higher limit is offered
      // within about a heartbeat, instead of idling while tasks wait in the queue.
      claimWaitMs: 1_000,
    });
    worker.onChange(() => this.#dispatcher.poke());
    this.#tester = new ConnectionTester({
      report: (testId, report) => service.connectionTestReport(testId, report),
      open: (endpoint, testId) =>
        openEndpoint(
          { sealPrivateKey: p.keys.sealPrivateKey, credentials: p.credentials },
          endpoint,
          testId,
          'test',
        ),
      allowedRoots: o.allowPaths,
      log,
    });
    this.#credentialSync = new CredentialSync({
      store: p.credentials,
      selfId: registration.nodeId,
      gatewayId: registration.gatewayId,
      sealPrivateKey: p.keys.sealPrivateKey,
      call: (peer, path, body) => peers.call(peer, 'POST', path, body, 10_000),
      log,
    });
    this.#heartbeat = new HeartbeatLoop({
      send: () => service.heartbeat(this.#heartbeatRequest()),
      intervalMs: 1000,
      log,
    });
    this.#heed();
  }

  /** Heartbeats from now on; a refusal by the service stops the node (`stopped` says why). */
  start(): void {
    const { o, log, registration } = this.#p;
    this.#heartbeat.start();
    log.info(
      { gateway: registration.gatewayName, peerPort: this.peerPort, limit: o.defaultLimit },
      'node running',
    );
    void this.stopped.then(async (fatal) => {
      if (fatal) {
        this.#shuttingDown = true;
        this.#p.worker.revoke(this.#p.worker.runningIds());
        await this.#closeAll();
      }
    });
  }

  async shutdown(graceMs = this.#p.o.drainGraceMs): Promise<void> {
    const { log, worker } = this.#p;
    if (this.#shuttingDown) return;
    this.#shuttingDown = true;
    worker.draining = true;
    this.#dispatcher.stop();
    // The loop beats no more: the two heartbeats below tell the service at once.
    void this.#heartbeat.stop();
    log.info({ running: worker.runningCount, graceMs }, 'draining before shutdown');
    await this.#heartbeat.beat().catch(() => undefined); // no new tasks here
    await worker.drain(graceMs);
    this.#leaving = true;
    await this.#heartbeat
      .beat()
      .catch((err: unknown) =>
        log.warn({ err: toFerryError(err).message }, 'could not tell the service this node is leaving'),
      );
    await this.#closeAll();
    this.#resolveStopped(undefined);
    log.info('stopped');
  }

  #heartbeatRequest(): HeartbeatRequestT {
    const { o, version, keys, worker, tls } = this.#p;
    return {
      version,
      metrics: (this.#lastSample = this.#hostMetrics.sample()),
      running: worker.runningIds(),
      defaultLimit: o.defaultLimit,
      draining: worker.draining,
      upgrading: false,
      tls: tls.tlsOnly,
      encryption: tls.report(),
      peerHost: o.advertise,
      peerPort: this.peerPort,
      reach: this.#reach,
      ...(this.#leaving ? { leaving: true } : {}),
      signPublicKey: keys.signPublicKey,
      sealPublicKey: keys.sealPublicKey,
      credentials: this.#p.credentials.held(),
    };
  }

  /** Each heartbeat reply, missed beat and loss of the service, to the parts that act on it. */
  #heed(): void {
    const { o, metrics, worker, peerAuth, leaseKey, tls } = this.#p;
    const hb = this.#heartbeat;
    // Membership first: a deleted node is refused from now on; the lease key checks dispatches.
    hb.onReply((res) => {
      // Each change of the status the service gives this node, with its reason, in the node's log.
      if (res.status !== this.#lastHb?.status)
        this.#p.log.info({ status: res.status, hint: res.statusHint }, `status ${res.status}`);
      this.#lastHb = res;
      this.#lastError = null;
      peerAuth.setMembers(res.peers);
      leaseKey.update(res.servicePublicKey);
      this.#p.gatewayKey.current = res.credentials?.gatewayKey ?? null;
    });
    // Then the encryption mode (and a new certificate): the probe below already goes the new way.
    hb.onReply((res) => tls.heed(res.encryption, Date.now()));
    hb.onReply((res) => {
      worker.limit = res.limit ?? o.defaultLimit; // the operator's limit, else this node's own
      if (!this.#shuttingDown) worker.draining = res.drain;
      worker.observeEpoch(res.epoch);
      if (res.revoked.length > 0) worker.revoke(res.revoked);
    });
    hb.onReply((res) => {
      if (!this.#shuttingDown) this.#dispatcher.update(res.role, res.epoch, res.peers, res.dispatcherLease);
    });
    hb.onReply((res) => {
      if (res.connectionTests && !this.#shuttingDown) this.#tester.take(res.connectionTests);
    });
    // Not awaited: peer calls must not hold up the next heartbeat (a round runs one at a time).
    hb.onReply((res) => {
      if (!this.#shuttingDown) void this.#credentialSync.heed(res);
    });
    hb.onReply((res) => {
      if (this.#lastSample)
        metrics.observeHeartbeat({
          gateway: res.gatewayName,
          node: this.registration.nodeName,
          status: res.status,
          role: res.role,
          limit: worker.limit,
          running: worker.runningCount,
          sample: this.#lastSample,
        });
    });
    hb.onReply(() => this.#writeStatus(true));
    // Probe after the heartbeat, so the next one carries fresh reachability.
    const ping = pingOver(this.#peers, o.probeTimeoutMs);
    hb.onReply(async (res) => {
      if (this.#shuttingDown) return;
      this.#reach = await probePeers(res.role, res.dispatcherNodeId, res.peers, ping);
    });
    hb.onMissed((err) => {
      metrics.heartbeatFailures.inc();
      this.#lastError = err.message;
      this.#writeStatus(false);
    });
    hb.onLost(({ error, forGood }) => {
      // Without the service, the dispatcher cannot claim anything and must not act on an old lease.
      this.#dispatcher.stop();
      if (forGood) {
        metrics.heartbeatFailures.inc();
        this.#resolveStopped(error);
      }
    });
  }

  /** status.json, for `ferry node status`: after every heartbeat, answered or not. */
  #writeStatus(connected: boolean): void {
    const { o, log, registration, worker } = this.#p;
    const hb = this.#lastHb;
    try {
      writeLocalStatus(o.dataDir, {
        at: new Date().toISOString(),
        gateway: registration.gatewayName,
        node: registration.nodeName,
        service: registration.serviceUrl,
        connected,
        lastError: this.#lastError,
        role: hb?.role ?? 'unknown',
        status: hb?.status ?? 'unknown',
        statusHint: hb?.statusHint ?? '',
        epoch: hb?.epoch ?? 0,
        running: worker.runningCount,
        limit: worker.limit,
        draining: worker.draining,
        pid: process.pid,
        peerUrl: `${this.#p.tls.tlsOnly ? 'https' : 'http'}://${o.advertise}:${this.peerPort}`,
      });
    } catch (err) {
      log.warn({ err: (err as Error).message }, 'cannot write status.json');
    }
  }

  async #closeAll(): Promise<void> {
    this.#dispatcher.stop();
    this.#tester.stop();
    await this.#heartbeat.stop().catch(() => undefined);
    const server = this.#server;
    this.#server = undefined;
    await server?.close();
    await this.#peers.close();
    await this.#p.service.close();
  }
}

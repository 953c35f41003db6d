/**
 * /api/v1/agent: what nodes call. Register with a key; everything else with the node token issued
 * at registration. The claim is a long-poll: it returns as soon as work is queued for the gateway.
 */
import { Type } from 'typebox';
import type { FastifyReply, FastifyRequest } from 'fastify';
import { NODE_ONLY, PUBLIC, callerNode, type App } from './route-access.ts';
import type { ServiceContext } from '../context.ts';
import { type HeartbeatResponseT, type ReportResultT, type ReportT } from '../../protocol/agent.ts';
import type { NodesTable } from '../store/schema.ts';
import { invalidKey, isInvalidKey, registerNode } from '../store/queries/register-node.ts';
import { FailureLimiter } from '../failure-limiter.ts';
import { recordHeartbeat } from '../store/queries/record-heartbeat.ts';
import { claimTasks } from '../store/queries/claim-tasks.ts';
import { completeAttempt, releaseAttempt, reportProgress } from '../store/queries/attempt-reports.ts';
import { deleteNode } from '../store/queries/nodes.ts';
import { findGatewayByKey } from '../store/queries/gateways.ts';
import { endpointResolver } from '../linked-service-secrets.ts';
import { connectionTestsFor } from '../connection-tests.ts';
import { recordConnectionTestReport } from '../store/queries/connection-tests.ts';
import { FerryError, toProblem } from '../../common/errors.ts';
import { toServiceError } from '../store/store-errors.ts';
import { parsePublicKey } from '../../protocol/node-keys.ts';
import { gatewayLabel } from '../gateway-metrics.ts';
import { findAttemptOutcome } from '../store/queries/attempt-outcome.ts';
import { signLease } from '../../protocol/dispatcher-lease.ts';
import { NodeCertificates } from '../tls/node-certificates.ts';
import {
  AgentClaimRequest,
  AgentClaimResponse,
  AgentCompleteRequest,
  AgentConnectionTestReport,
  AgentHeartbeatRequest,
  AgentHeartbeatResponse,
  AgentProgressRequest,
  AgentRegisterRequest,
  AgentRegisterResponse,
  AgentReleaseRequest,
  AgentReportsRequest,
  AgentReportsResponse,
  KeyGatewayRequest,
  KeyGatewayResponse,
  Ok,
  responses,
} from './schemas.ts';

/** A node's keys must be real keys of the right kind, or its peers and its sealed secrets fail later. */
function checkNodeKeys(body: { signPublicKey: string; sealPublicKey: string }): void {
  parsePublicKey(body.signPublicKey, 'ed25519', 'signPublicKey');
  parsePublicKey(body.sealPublicKey, 'x25519', 'sealPublicKey');
}

/**
 * Body limits of the node routes (others take the service's default, DEFAULT_BODY_LIMIT in app.ts).
 * The public key routes take a registration's few hundred bytes. A heartbeat lists at most
 * MAX_RUNNING attempt ids and a claim one slot per worker. Reports are the large ones: a batch
 * carries up to 4 MiB (src/node/report-batcher.ts), and one outcome alone may list a task's many
 * outputs, so they keep the service's former limit; a token is checked before any body is read.
 */
const KEY_BODY_LIMIT = 64 * 1024;
const HEARTBEAT_BODY_LIMIT = 4 * 1024 * 1024;
const CLAIM_BODY_LIMIT = 4 * 1024 * 1024;
const REPORT_BODY_LIMIT = 64 * 1024 * 1024;

const AttemptParams = Type.Object({ id: Type.String({ minLength: 1 }) });
/** A claim re-reads the queue at least this often, for work queued by another service replica. */
const CLAIM_POLL_MS = 500;

export function agentRoutes(app: App, ctx: ServiceContext): void {
  const db = ctx.store.db;
  const resolve = endpointResolver(ctx.masterKey);
  const certificates = new NodeCertificates({
    db,
    masterKey: ctx.masterKey,
    validityMs: ctx.options.nodeCertValidityMs,
    log: ctx.log,
  });
  // In the OpenAPI document, so that everything the service serves is described in one place.
  const agent = { tags: ['agent'] };
  const open = { tags: ['agent'], security: [] };

  // The two routes that take a key and no token. An address whose failed key attempts are used up
  // is refused before its body is read or its key looked at (src/service/failure-limiter.ts).
  const keyFailures = new FailureLimiter({ perMinute: ctx.options.keyFailuresPerMinute });
  const keyRoute = {
    config: PUBLIC,
    bodyLimit: KEY_BODY_LIMIT,
    onRequest: async (req: FastifyRequest, reply: FastifyReply): Promise<void> => {
      const waitMs = keyFailures.blockedFor(req.ip, ctx.now());
      if (waitMs <= 0) return;
      const secs = Math.ceil(waitMs / 1000);
      void reply.header('retry-after', String(secs));
      throw new FerryError(
        'rate_limited',
        `too many failed key attempts from ${req.ip}: try again in ${secs} s`,
        { hint: 'check the key with `ferry gateway keys GATEWAY`' },
      );
    },
  };
  /** Runs a key route's work, counting a key no gateway holds against the caller's address. */
  const countingKeyFailures = async <T>(req: FastifyRequest, work: () => Promise<T>): Promise<T> => {
    try {
      return await work();
    } catch (err) {
      if (isInvalidKey(err)) keyFailures.fail(req.ip, ctx.now());
      throw err;
    }
  };

  app.post(
    '/api/v1/agent/register',
    {
      schema: {
        ...open,
        operationId: 'registerNode',
        summary: 'Register a node with a gateway key',
        body: AgentRegisterRequest,
        response: responses({ 201: ['The node and its token', AgentRegisterResponse] }),
      },
      ...keyRoute,
    },
    async (req, reply) => {
      checkNodeKeys(req.body);
      const registered = await countingKeyFailures(req, () =>
        registerNode(db, req.body, req.body.defaultLimit, ctx.now(), ctx.timings),
      );
      ctx.log.info({ node: req.body.name, gateway: registered.gatewayName }, 'node registered');
      void reply.status(201);
      return registered;
    },
  );

  // Which gateway a key belongs to: lets an already registered node refuse another gateway's key.
  app.post(
    '/api/v1/agent/key-gateway',
    {
      schema: {
        ...open,
        operationId: 'keyGateway',
        summary: 'Which gateway a key belongs to',
        body: KeyGatewayRequest,
        response: responses({ 200: ['The gateway', KeyGatewayResponse] }),
      },
      ...keyRoute,
    },
    async (req) =>
      countingKeyFailures(req, async () => {
        const gw = await findGatewayByKey(db, req.body.key);
        if (!gw) throw invalidKey();
        return { gatewayId: gw.id, gatewayName: gw.name };
      }),
  );

  app.post(
    '/api/v1/agent/heartbeat',
    {
      schema: {
        ...agent,
        operationId: 'heartbeat',
        summary: "A node's heartbeat",
        body: AgentHeartbeatRequest,
        response: responses({ 200: ["The node's role, limit and peers", AgentHeartbeatResponse] }),
      },
      config: NODE_ONLY,
      bodyLimit: HEARTBEAT_BODY_LIMIT,
    },
    async (req) => {
      const end = ctx.metrics.heartbeatSeconds.startTimer();
      try {
        ctx.metrics.heartbeats.inc();
        const node = callerNode(req);
        // Checked when they change (nodes send the same keys every second).
        if (
          req.body.signPublicKey !== node.sign_public_key ||
          req.body.sealPublicKey !== node.seal_public_key
        )
          checkNodeKeys(req.body);
        const recorded = await recordHeartbeat(db, node, req.body, ctx.now(), ctx.timings);
        if (req.body.leaving || req.body.draining) ctx.notifier.notify(node.gateway_id);
        const res: HeartbeatResponseT = { ...recorded, servicePublicKey: ctx.leaseKey.publicKeyText };
        if (!req.body.leaving && res.encryption) {
          // Like a connection test, a certificate that cannot be issued now is issued at a later
          // heartbeat: it must not cost the node this one.
          const cert = await certificates.forHeartbeat(node, req.body, ctx.now()).catch((err: unknown) => {
            ctx.log.warn(
              { err: toServiceError(err).message, node: node.name },
              'node certificate not issued',
            );
            return {};
          });
          res.encryption = { ...res.encryption, ...cert };
        }
        if (!req.body.leaving) {
          // A test that cannot be prepared now is handed out again later (REDELIVER_MS): it must
          // not cost the node its heartbeat, which keeps it Online and its role.
          const tests = await connectionTestsFor(ctx, node, req.body.sealPublicKey).catch((err: unknown) => {
            ctx.log.warn(
              { err: toServiceError(err).message, node: node.name },
              'connection tests not handed out',
            );
            return [];
          });
          if (tests.length > 0) res.connectionTests = tests;
        }
        // The dispatcher's proof, for its workers, that the service gave it the role under this epoch.
        if (recorded.role === 'dispatcher')
          res.dispatcherLease = signLease(ctx.leaseKey.privateKey, {
            gatewayId: node.gateway_id,
            dispatcherNodeId: node.id,
            epoch: recorded.epoch,
            issuedAt: ctx.now(),
          });
        return res;
      } finally {
        end();
      }
    },
  );

  app.post(
    '/api/v1/agent/claim',
    {
      schema: {
        ...agent,
        operationId: 'claimTasks',
        summary: 'The dispatcher claims queued tasks (a long-poll)',
        body: AgentClaimRequest,
        response: responses({ 200: ['The attempts handed out', AgentClaimResponse] }),
      },
      config: NODE_ONLY,
      bodyLimit: CLAIM_BODY_LIMIT,
    },
    async (req, reply) => {
      const node = callerNode(req);
      const deadline = ctx.now() + req.body.waitMs;
      const closed = new AbortController();
      // The response's 'close' before it is sent means the dispatcher went away (the request's own
      // 'close' fires as soon as its body is read, which would end every long-poll at once).
      reply.raw.once('close', () => closed.abort());
      for (;;) {
        let attempts;
        const dueAt: number[] = [];
        try {
          attempts = await claimTasks(
            db,
            ctx.store.dialect,
            { node, epoch: req.body.epoch, slots: req.body.slots },
            ctx.now(),
            ctx.timings,
            resolve,
            (at) => dueAt.push(at),
          );
        } catch (err) {
          if (err instanceof FerryError && err.code === 'stale_epoch')
            ctx.metrics.claimsRejected.inc({ reason: 'stale_epoch' });
          throw err;
        }
        ctx.metrics.claims.inc();
        const left = deadline - ctx.now();
        if (attempts.length > 0 || left <= 0 || closed.signal.aborted) {
          ctx.metrics.attemptsDispatched.inc(attempts.length);
          if (attempts.length > 0) {
            const gateway = await gatewayLabel(db, ctx.metrics.gatewayNames, node.gateway_id);
            const claimedAt = ctx.now();
            for (const at of dueAt)
              ctx.metrics.taskPickupDelay.observe({ gateway }, Math.max(0, claimedAt - at) / 1000);
          }
          return { attempts };
        }
        await ctx.notifier.wait(node.gateway_id, Math.min(left, CLAIM_POLL_MS), closed.signal);
      }
    },
  );

  /**
   * One attempt's report, taken as the single routes and the batch take it, and counted: progress
   * renews the lease; an outcome settles the attempt and wakes the claimer (a finished attempt frees
   * capacity, a finished plan queues copy tasks).
   */
  /** A settled attempt, into the task metrics (a metrics failure does not refuse the report). */
  const countOutcome = async (attemptId: string): Promise<void> => {
    try {
      const o = await findAttemptOutcome(db, attemptId);
      if (!o || o.finishedAt === null || (o.status !== 'succeeded' && o.status !== 'failed')) return;
      const gateway = await gatewayLabel(db, ctx.metrics.gatewayNames, o.gatewayId);
      ctx.metrics.taskDuration.observe(
        { gateway, outcome: o.status },
        Math.max(0, o.finishedAt - o.createdAt) / 1000,
      );
      if (o.status === 'succeeded') {
        ctx.metrics.rowsMoved.inc({ gateway }, o.rows);
        ctx.metrics.bytesMoved.inc({ gateway }, o.bytes);
      }
    } catch (err) {
      ctx.log.warn({ err: toServiceError(err).message, attempt: attemptId }, 'task metrics not counted');
    }
  };

  const take = async (node: NodesTable, report: ReportT): Promise<void> => {
    const kind = 'progress' in report ? 'progress' : 'complete';
    try {
      if ('progress' in report) {
        await reportProgress(
          db,
          node,
          report.attemptId,
          report.progress,
          ctx.now(),
          ctx.timings.attemptLeaseMs,
        );
      } else {
        await completeAttempt(db, node, report.attemptId, report.complete, ctx.now());
        ctx.notifier.notify(node.gateway_id);
        await countOutcome(report.attemptId);
      }
      ctx.metrics.reports.inc({ kind, outcome: 'taken' });
    } catch (err) {
      ctx.metrics.reports.inc({ kind, outcome: 'refused' });
      throw err;
    }
  };

  app.post(
    '/api/v1/agent/attempts/:id/progress',
    {
      schema: {
        ...agent,
        operationId: 'reportProgress',
        summary: "An attempt's progress (renews its lease)",
        params: AttemptParams,
        body: AgentProgressRequest,
        response: responses({ 200: ['Taken', Ok] }),
      },
      config: NODE_ONLY,
    },
    async (req) => {
      ctx.metrics.reportBatches.inc();
      await take(callerNode(req), { attemptId: req.params.id, progress: req.body });
      return { ok: true };
    },
  );

  app.post(
    '/api/v1/agent/attempts/:id/complete',
    {
      schema: {
        ...agent,
        operationId: 'completeAttempt',
        summary: "An attempt's outcome",
        params: AttemptParams,
        body: AgentCompleteRequest,
        response: responses({ 200: ['Taken', Ok] }),
      },
      config: NODE_ONLY,
      bodyLimit: REPORT_BODY_LIMIT,
    },
    async (req) => {
      ctx.metrics.reportBatches.inc();
      await take(callerNode(req), { attemptId: req.params.id, complete: req.body });
      return { ok: true };
    },
  );

  // Many attempts' reports in one request: a busy node sends what piled up while its last batch was
  // on its way (src/node/report-batcher.ts). Each report is taken as its single call would be, in
  // its own transaction: one refused does not undo the others.
  app.post(
    '/api/v1/agent/reports',
    {
      schema: {
        ...agent,
        operationId: 'sendReports',
        summary: "Several attempts' reports at once",
        body: AgentReportsRequest,
        response: responses({ 200: ['Per report, taken or refused', AgentReportsResponse] }),
      },
      config: NODE_ONLY,
      bodyLimit: REPORT_BODY_LIMIT,
    },
    async (req) => {
      const node = callerNode(req);
      ctx.metrics.reportBatches.inc();
      const results: ReportResultT[] = [];
      for (const report of req.body.reports) {
        try {
          await take(node, report);
          results.push({ ok: true });
        } catch (err) {
          const fe = toServiceError(err);
          if (fe.code === 'internal')
            ctx.log.error({ err: fe.message, attempt: report.attemptId }, 'report failed');
          results.push({ ok: false, error: toProblem(fe) });
        }
      }
      return { results };
    },
  );

  app.post(
    '/api/v1/agent/attempts/:id/release',
    {
      schema: {
        ...agent,
        operationId: 'releaseAttempt',
        summary: 'Give an attempt back (its task is queued again)',
        params: AttemptParams,
        body: AgentReleaseRequest,
        response: responses({ 200: ['Taken', Ok] }),
      },
      config: NODE_ONLY,
    },
    async (req) => {
      const node = callerNode(req);
      await releaseAttempt(db, node, req.params.id, req.body.reason, ctx.now());
      ctx.notifier.notify(node.gateway_id);
      return { ok: true };
    },
  );

  // A node's answer to a connection test it was handed in a heartbeat reply (src/service/connection-tests.ts).
  app.post(
    '/api/v1/agent/connection-tests/:id',
    {
      schema: {
        ...agent,
        operationId: 'reportConnectionTest',
        summary: "A node's answer to a connection test",
        params: AttemptParams,
        body: AgentConnectionTestReport,
        response: responses({ 200: ['Taken', Ok] }),
      },
      config: NODE_ONLY,
      bodyLimit: KEY_BODY_LIMIT,
    },
    async (req) => {
      await recordConnectionTestReport(db, req.params.id, callerNode(req).id, req.body);
      return { ok: true };
    },
  );

  const leaveSchema = {
    ...agent,
    operationId: 'leaveGateway',
    summary: 'A node leaves its gateway for good',
    response: responses({ 204: 'Deleted' }),
  };
  app.delete('/api/v1/agent/self', { schema: leaveSchema, config: NODE_ONLY }, async (req, reply) => {
    const node = callerNode(req);
    await deleteNode(db, node, ctx.now());
    ctx.notifier.notify(node.gateway_id);
    void reply.status(204);
  });
}

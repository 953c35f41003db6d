/**
 * `ferry linked-service test`: a node of the gateway connects to the store with the linked service's
 * settings and says whether it can read (and write), and if not, why. The service never touches
 * data, so it only asks: the test is stored (queries/connection-tests.ts), handed to the chosen node
 * in its next heartbeat reply with the secret values sealed to that node for this test alone, and
 * the API call waits for the node's report.
 */
import type { NodesTable } from './store/schema.ts';
import type { ServiceContext } from './context.ts';
import type { ConnectionTestReportT, ConnectionTestT } from '../protocol/agent.ts';
import { MAX_CONNECTION_TESTS } from '../protocol/agent.ts';
import { FerryError } from '../common/errors.ts';
import { newId } from '../common/crypto.ts';
import { getLinkedService, linkedServiceUsers } from './store/queries/linked-services.ts';
import {
  connectionTestReport,
  createConnectionTest,
  deleteConnectionTest,
  recordConnectionTestReport,
  takeConnectionTests,
} from './store/queries/connection-tests.ts';
import type { NodeState } from './scheduler/gateway-state.ts';
import { loadGatewayState } from './store/queries/load-gateway-state.ts';
import { resolveLinkedService, sealedFor } from './linked-service-secrets.ts';

export const DEFAULT_TEST_TIMEOUT_MS = 30_000;
/** How often the waiting API call looks for the node's report (any replica may have stored it). */
const REPORT_POLL_MS = 200;
/** A test handed out but not answered is handed out again after this (the reply may have been lost). */
const REDELIVER_MS = 10_000;

export interface ConnectionTestRequest {
  linkedService: string;
  /** The node that connects; default the dispatcher, else the first node that is up. */
  node?: string;
  /** Also write; default: when a pipeline writes to the linked service. */
  write?: boolean;
  timeoutMs: number;
}

export interface ConnectionTestOutcome extends ConnectionTestReportT {
  linkedService: string;
  type: string;
  gateway: string;
  node: string;
  writeReason: string;
}

function secondsAgo(now: number, at: number): string {
  return `${Math.max(0, Math.round((now - at) / 1000))} s ago`;
}

/** The node that runs the test: the one asked for, which must be up, or the best one that is. */
function chooseNode(
  nodes: readonly NodeState[],
  dispatcher: NodeState | undefined,
  gateway: string,
  asked: string | undefined,
  now: number,
): NodeState {
  const up = (n: NodeState): boolean => n.status.status !== 'Offline';
  if (asked !== undefined) {
    const node = nodes.find((n) => n.row.name === asked);
    if (!node)
      throw new FerryError('not_found', `gateway "${gateway}" has no node "${asked}"`, {
        hint: `list them with \`ferry node list ${gateway}\``,
      });
    if (!up(node))
      throw new FerryError(
        'conflict',
        `node "${asked}" is Offline (last seen ${secondsAgo(now, node.row.last_seen_at)}): it cannot run a connection test`,
        { hint: 'start the node, or leave out --node to let any node that is up run it' },
      );
    return node;
  }
  const chosen =
    (dispatcher && up(dispatcher) ? dispatcher : undefined) ??
    nodes.find((n) => n.status.status === 'Online') ??
    nodes.find(up);
  if (!chosen)
    throw new FerryError('conflict', `no node of gateway "${gateway}" is up to run a connection test`, {
      hint: `start a node of the gateway (\`ferry node list ${gateway}\` shows them)`,
    });
  return chosen;
}

/** Asks a node to test a linked service and waits for its answer (or the timeout). */
export async function runConnectionTest(
  ctx: ServiceContext,
  req: ConnectionTestRequest,
  signal: AbortSignal,
): Promise<ConnectionTestOutcome> {
  const db = ctx.store.db;
  const ls = await getLinkedService(db, req.linkedService);
  const state = await loadGatewayState(db, ls.gateway_id, ctx.now(), {
    offlineAfterMs: ctx.timings.offlineAfterMs,
  });
  if (!state)
    throw new FerryError('not_found', `the gateway of linked service "${ls.name}" no longer exists`);
  const gateway = state.gateway.name;
  const node = chooseNode(state.nodes, state.dispatcher, gateway, req.node, ctx.now());

  let write: boolean;
  let writeReason: string;
  if (req.write !== undefined) {
    write = req.write;
    writeReason = write ? 'asked for' : 'not asked for';
  } else {
    const { writers } = await linkedServiceUsers(db, ls.name);
    write = writers.length > 0;
    writeReason = write
      ? `pipelines write to it: ${writers.join(', ')}`
      : 'no pipeline writes to it (ask for a write test with --write)';
  }

  const now = ctx.now();
  const id = newId('ct');
  await createConnectionTest(db, {
    id,
    node_id: node.row.id,
    linked_service: ls.name,
    write: write ? 1 : 0,
    created_at: now,
    expires_at: now + req.timeoutMs,
    delivered_at: null,
    report_json: null,
  });
  try {
    const report = await waitForReport(ctx, id, now + req.timeoutMs, signal);
    if (report === null)
      throw new FerryError(
        'unavailable',
        `node "${node.row.name}" did not answer the connection test within ${Math.round(req.timeoutMs / 1000)} s`,
        {
          hint: `nodes take tests with their heartbeat: check the node with \`ferry node list ${gateway}\`, or try another with --node`,
        },
      );
    return {
      linkedService: ls.name,
      type: ls.type,
      gateway,
      node: node.row.name,
      writeReason: write && !report.write ? 'not tried: reading failed' : writeReason,
      ...report,
    };
  } finally {
    await deleteConnectionTest(db, id).catch(() => undefined); // swept with the next test otherwise
  }
}

async function waitForReport(
  ctx: ServiceContext,
  id: string,
  until: number,
  signal: AbortSignal,
): Promise<ConnectionTestReportT | null> {
  for (;;) {
    const report = await connectionTestReport(ctx.store.db, id);
    if (report !== null) return report;
    if (ctx.now() >= until || signal.aborted) return null;
    await new Promise((r) => setTimeout(r, REPORT_POLL_MS));
  }
}

/**
 * The tests to hand a node in its heartbeat reply, each with the linked service resolved and its
 * secret values sealed to the node's key for that test id. A test whose linked service was deleted
 * meanwhile is answered here, as failed.
 */
export async function connectionTestsFor(
  ctx: ServiceContext,
  node: Pick<NodesTable, 'id'>,
  sealPublicKey: string,
): Promise<ConnectionTestT[]> {
  const db = ctx.store.db;
  const due = await takeConnectionTests(db, node.id, ctx.now(), REDELIVER_MS, MAX_CONNECTION_TESTS);
  const out: ConnectionTestT[] = [];
  for (const t of due) {
    // Only a linked service that is gone ends the test here; a store error fails this heartbeat's
    // hand-out, and the test is handed out again.
    const ls = await getLinkedService(db, t.linked_service).catch((err: unknown) => {
      if (err instanceof FerryError && err.code === 'not_found') return undefined;
      throw err;
    });
    if (!ls) {
      const gone: ConnectionTestReportT = {
        read: {
          ok: false,
          detail: 'not tried',
          error: { code: 'not_found', message: `linked service "${t.linked_service}" was deleted` },
          ms: 0,
        },
      };
      await recordConnectionTestReport(db, t.id, node.id, gone).catch(() => undefined);
      continue;
    }
    const resolved = resolveLinkedService(ctx.masterKey, ls, {});
    out.push({
      testId: t.id,
      endpoint: sealedFor(resolved, sealPublicKey, t.id, 'test'),
      write: t.write === 1,
    });
  }
  return out;
}

/**
 * The dispatcher's claim. Fenced: only the node holding the gateway's dispatcher lease, under the
 * current epoch, may claim; anything else is `stale_epoch`. The service assigns each claimed task to
 * one of the workers the dispatcher offered, never beyond a worker's free capacity as the service
 * itself counts it, most free capacity first (the policy: scheduler/assignment.ts).
 */
import type { Kysely } from 'kysely';
import type { NodesTable, Schema } from '../schema.ts';
import type { AssignedAttemptT, SlotT } from '../../../protocol/agent.ts';
import type { TaskSpecT } from '../../../protocol/task.ts';
import {
  hasSecrets,
  sealedFor,
  type EndpointResolver,
  type ResolvedForNode,
} from '../../linked-service-secrets.ts';
import type { CopyActivityT } from '../../../protocol/pipeline.ts';
import { FerryError, toFerryError } from '../../../common/errors.ts';
import { settleActivity } from './settle-task.ts';
import { newId } from '../../../common/crypto.ts';
import { buildGatewayState } from '../../scheduler/gateway-state.ts';
import { activeAttemptsByNode } from './active-attempts.ts';
import { assignWorker, workerRoom } from '../../scheduler/assignment.ts';
import type { SchedulerTimings } from '../../scheduler/timings.ts';
import type { StoreDialect } from '../store-dialect.ts';
import { JSON_COLUMNS } from '../json-column.ts';

interface Resolved {
  activity: CopyActivityT;
  runId: string;
  endpoints: { source: ResolvedForNode; sink: ResolvedForNode };
}

async function resolveActivity(
  tx: Kysely<Schema>,
  activityRunId: string,
  resolve: EndpointResolver,
): Promise<Resolved | FerryError> {
  const ar = await tx
    .selectFrom('activity_runs')
    .select(['spec_json', 'run_id'])
    .where('id', '=', activityRunId)
    .executeTakeFirstOrThrow();
  const activity = JSON_COLUMNS.activitySpec.read(ar.spec_json, activityRunId);
  try {
    return { activity, runId: ar.run_id, endpoints: await resolve(tx, activity) };
  } catch (err) {
    return toFerryError(err);
  }
}

export interface ClaimInput {
  node: NodesTable;
  epoch: number;
  slots: readonly SlotT[];
}

export async function claimTasks(
  db: Kysely<Schema>,
  dialect: StoreDialect,
  input: ClaimInput,
  now: number,
  t: SchedulerTimings,
  resolve: EndpointResolver,
  /** Told, for each task handed out, since when it was due: queued, requeued, or its retry backoff over. */
  onClaimed?: (dueAt: number) => void,
): Promise<AssignedAttemptT[]> {
  return db.transaction().execute(async (tx) => {
    const gateway = await tx
      .selectFrom('gateways')
      .selectAll()
      .where('id', '=', input.node.gateway_id)
      .$if(dialect === 'postgres', (q) => q.forUpdate())
      .executeTakeFirstOrThrow();
    if (
      gateway.dispatcher_node_id !== input.node.id ||
      gateway.epoch !== input.epoch ||
      gateway.lease_until <= now
    ) {
      throw new FerryError(
        'stale_epoch',
        `${input.node.name} may not claim for gateway "${gateway.name}": epoch ${input.epoch} is not the current dispatcher lease (epoch ${gateway.epoch})`,
      );
    }
    const rows = await tx.selectFrom('nodes').selectAll().where('gateway_id', '=', gateway.id).execute();
    const state = buildGatewayState(gateway, rows, now, t);
    const active = await activeAttemptsByNode(
      tx,
      rows.map((r) => r.id),
    );
    const free = workerRoom(state.nodes, input.slots, active);
    const total = [...free.values()].reduce((a, b) => a + b, 0);
    if (total === 0) return [];

    const tasks = await tx
      .selectFrom('tasks')
      .selectAll()
      .where('gateway_id', '=', gateway.id)
      .where('status', '=', 'queued')
      .where('not_before', '<=', now)
      .orderBy('queued_at')
      .orderBy('idx')
      .limit(total)
      .$if(dialect === 'postgres', (q) => q.forUpdate().skipLocked())
      .execute();

    const sealKeys = new Map(rows.map((r) => [r.id, r.seal_public_key]));
    // Gateway-held credentials: a task goes only to a node holding the newest version a node up holds.
    const held = new Map(state.nodes.map((n) => [n.row.id, n.credentials.versions]));
    const latest = state.latestCredentials;
    const specCache = new Map<string, Resolved | FerryError>();
    const out: AssignedAttemptT[] = [];
    for (const task of tasks) {
      let cached = specCache.get(task.activity_run_id);
      if (!cached) {
        cached = await resolveActivity(tx, task.activity_run_id, resolve);
        specCache.set(task.activity_run_id, cached);
      }
      if (cached instanceof FerryError) {
        // The linked service changed under the run (deleted, unreadable secret): the task cannot run.
        await tx
          .updateTable('tasks')
          .set({ status: 'failed', error: cached.message, finished_at: now })
          .where('id', '=', task.id)
          .execute();
        await settleActivity(tx, task.activity_run_id, now);
        continue;
      }
      if (free.size === 0) break;
      const needing = [cached.endpoints.source, cached.endpoints.sink].filter((e) => e.gatewayHeld === true);
      const gatewayHeld = needing.map((e) => e.linkedService);
      // Held only at versions from before the linked service was created (again): none counts.
      const unheld = needing.find(
        (e) => (latest.get(e.linkedService)?.version ?? 0) < (e.credentialFloor ?? 1),
      )?.linkedService;
      if (unheld !== undefined) {
        await tx
          .updateTable('tasks')
          .set({
            status: 'failed',
            error: `linked service "${unheld}" keeps its credentials in gateway "${gateway.name}", and no node that is up holds them: set them with \`ferry credential set ${unheld}\``,
            finished_at: now,
          })
          .where('id', '=', task.id)
          .execute();
        await settleActivity(tx, task.activity_run_id, now);
        continue;
      }
      const holds = (id: string): boolean =>
        gatewayHeld.every((ls) => (held.get(id)?.[ls] ?? 0) >= (latest.get(ls)?.version ?? 0));
      // A task with secrets goes only to a node whose seal key the service knows (every node sends
      // one at registration and in each heartbeat; a node registered before keys existed has none
      // until its first heartbeat). Without one, the task stays queued for a later claim.
      const secret = hasSecrets(cached.endpoints.source) || hasSecrets(cached.endpoints.sink);
      const nodeId = assignWorker(free, (id) => (!secret || sealKeys.get(id) != null) && holds(id));
      if (nodeId === undefined) continue;
      const attemptId = newId('att');
      await tx
        .insertInto('attempts')
        .values({
          id: attemptId,
          task_id: task.id,
          run_id: task.run_id,
          node_id: nodeId,
          node_name: state.nodes.find((n) => n.row.id === nodeId)?.row.name ?? nodeId,
          epoch: gateway.epoch,
          status: 'dispatched',
          created_at: now,
          started_at: null,
          finished_at: null,
          lease_until: now + t.attemptLeaseMs,
          rows: 0,
          bytes: 0,
          error: null,
        })
        .execute();
      await tx
        .updateTable('tasks')
        .set({
          status: 'running',
          attempts: task.attempts + 1,
          node_id: nodeId,
          started_at: task.started_at ?? now,
        })
        .where('id', '=', task.id)
        .execute();
      const spec: TaskSpecT = {
        runId: cached.runId,
        activity: cached.activity.name,
        source: sealedFor(
          cached.endpoints.source,
          sealKeys.get(nodeId) ?? null,
          attemptId,
          'source',
          latest.get(cached.endpoints.source.linkedService)?.version,
        ),
        sink: sealedFor(
          cached.endpoints.sink,
          sealKeys.get(nodeId) ?? null,
          attemptId,
          'sink',
          latest.get(cached.endpoints.sink.linkedService)?.version,
        ),
        work: JSON_COLUMNS.taskWork.read(task.work_json, task.id),
        ...(cached.activity.maxBytesPerSecond !== undefined
          ? { maxBytesPerSecond: cached.activity.maxBytesPerSecond }
          : {}),
      };
      onClaimed?.(Math.max(task.queued_at, task.not_before));
      out.push({
        attemptId,
        taskId: task.id,
        nodeId,
        epoch: gateway.epoch,
        queuedAt: task.queued_at,
        leaseMs: t.attemptLeaseMs,
        spec,
      });
    }
    return out;
  });
}

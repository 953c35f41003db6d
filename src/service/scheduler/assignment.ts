/**
 * Which worker each claimed task goes to (the dispatcher's claim: store/queries/claim-tasks.ts).
 * The dispatcher offers its workers' free slots, and the service hands out no more than it counts
 * itself: a worker's room is the smaller of what was offered and its limit minus the attempts the
 * service has it holding, and only an eligible worker (Online, not draining) has any. Each task
 * goes to the worker with the most room left, ties to the one offered first, so work spreads over
 * the workers instead of filling the first.
 */
import type { SlotT } from '../../protocol/agent.ts';
import type { NodeState } from './gateway-state.ts';

/** Room per offered worker (only workers with some), in the order the dispatcher offered them. */
export function workerRoom(
  nodes: readonly { row: Pick<NodeState['row'], 'id'>; eligible: boolean; limit: number }[],
  slots: readonly SlotT[],
  active: ReadonlyMap<string, number>,
): Map<string, number> {
  const room = new Map<string, number>();
  for (const slot of slots) {
    const n = nodes.find((x) => x.row.id === slot.nodeId);
    if (!n || !n.eligible) continue;
    const free = Math.min(slot.free, n.limit - (active.get(n.row.id) ?? 0));
    if (free > 0) room.set(n.row.id, free);
  }
  return room;
}

/**
 * The worker the next task goes to, among those `mayRun` accepts (a task with secrets goes only to a
 * worker whose seal key the service knows); takes one slot of its room, and drops a worker whose
 * room is used up. Undefined, and `room` untouched, when no worker may run it.
 */
export function assignWorker(
  room: Map<string, number>,
  mayRun: (nodeId: string) => boolean = () => true,
): string | undefined {
  const nodeId = [...room.entries()].filter(([id]) => mayRun(id)).sort((a, b) => b[1] - a[1])[0]?.[0];
  if (nodeId === undefined) return undefined;
  const left = (room.get(nodeId) ?? 1) - 1;
  if (left > 0) room.set(nodeId, left);
  else room.delete(nodeId);
  return nodeId;
}

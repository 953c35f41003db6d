/** Claimed tasks go to the worker with the most room, within what the service itself counts. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { assignWorker, workerRoom } from './assignment.ts';

function worker(id: string, limit: number, eligible = true) {
  return { row: { id }, eligible, limit };
}

test('room: the smaller of what was offered and the limit less what the service has the worker hold', () => {
  const nodes = [worker('a', 4), worker('b', 4), worker('c', 2)];
  const active = new Map([
    ['a', 3],
    ['c', 2],
  ]);
  const room = workerRoom(
    nodes,
    [
      { nodeId: 'a', free: 4 }, // the dispatcher thinks 4; the service counts 3 held: 1
      { nodeId: 'b', free: 2 }, // offered 2 of 4
      { nodeId: 'c', free: 1 }, // at its limit by the service's count: none
    ],
    active,
  );
  assert.deepEqual(
    [...room],
    [
      ['a', 1],
      ['b', 2],
    ],
  );
});

test('room: only eligible workers, only known ones, none for a slot of 0', () => {
  const nodes = [worker('a', 4, false), worker('b', 4)];
  const room = workerRoom(
    nodes,
    [
      { nodeId: 'a', free: 4 }, // draining or not Online
      { nodeId: 'x', free: 4 }, // not a node of this gateway
      { nodeId: 'b', free: 0 },
    ],
    new Map(),
  );
  assert.equal(room.size, 0);
});

test('most room first, ties to the worker offered first, until every slot is taken', () => {
  const room = new Map([
    ['a', 1],
    ['b', 3],
    ['c', 3],
  ]);
  const order: (string | undefined)[] = [];
  for (let i = 0; i < 8; i++) order.push(assignWorker(room));
  assert.deepEqual(order, ['b', 'c', 'b', 'c', 'a', 'b', 'c', undefined]);
  assert.equal(room.size, 0, 'a worker whose room is used up is dropped');
});

test('a task only some workers may run (secrets: a known seal key) goes to the roomiest of those', () => {
  const room = new Map([
    ['a', 5],
    ['b', 1],
  ]);
  assert.equal(
    assignWorker(room, (id) => id === 'b'),
    'b',
  );
  assert.deepEqual([...room], [['a', 5]]);
  assert.equal(
    assignWorker(room, (id) => id === 'b'),
    undefined,
    'none may run it: it stays queued',
  );
  assert.deepEqual([...room], [['a', 5]], 'and no room is taken');
  assert.equal(assignWorker(room), 'a');
  assert.deepEqual([...room], [['a', 4]]);
});

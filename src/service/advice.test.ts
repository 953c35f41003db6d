/** The scale advisor over synthetic histories: every kind of advice, and none. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import {
  adviseScale,
  HIGH_CPU_PERCENT,
  LOW_MEMORY_AVAILABLE_PERCENT,
  type Advice,
  type AdviceInput,
} from './advice.ts';
import type { NodePoint, QueuePoint } from './history-points.ts';

const GB = 1e9;
const START = 1_800_000_000_000;

/** An hour of 10 s samples: `shape(i)` gives the i-th (0..359) sample's figures. */
function hour(shape: (i: number) => Partial<NodePoint>): NodePoint[] {
  return Array.from({ length: 360 }, (_, i) => ({
    at: START + i * 10_000,
    samples: 1,
    status: 'Online',
    cpuPercent: 30,
    memoryAvailableBytes: 6 * GB,
    memoryTotalBytes: 8 * GB,
    networkInBytesPerSec: 1e6,
    networkOutBytesPerSec: 1e6,
    running: 1,
    limit: 4,
    ...shape(i),
  }));
}

function queue(queued: (i: number) => number, waitMs = 0): QueuePoint[] {
  return Array.from({ length: 360 }, (_, i) => ({
    at: START + i * 10_000,
    samples: 1,
    queued: queued(i),
    oldestWaitMs: queued(i) > 0 ? waitMs : 0,
  }));
}

function input(over: Partial<AdviceInput>): AdviceInput {
  return {
    gateway: 'gw',
    window: '1h',
    nodes: [{ name: 'a', points: hour(() => ({})) }],
    queue: queue(() => 0),
    attemptsTimedOut: 0,
    attemptsLostWithNode: 0,
    ...over,
  };
}

const kinds = (advice: Advice[]): string[] => advice.map((a) => a.kind);
const figure = (a: Advice | undefined, name: string): number | undefined =>
  a?.figures.find((f) => f.name === name)?.value;

test('a quiet gateway: nothing to do, with the figures that say so', () => {
  const [a, ...rest] = adviseScale(input({}));
  assert.equal(rest.length, 0);
  assert.equal(a?.kind, 'nothing');
  assert.equal(a?.title, 'Nothing to do');
  assert.equal(figure(a, 'average CPU'), 30);
  assert.equal(figure(a, 'average available memory'), 75);
  assert.equal(figure(a, 'time with tasks waiting'), 0);
});

test('no history at all: nothing to advise yet, said as such', () => {
  const advice = adviseScale(input({ nodes: [], queue: [] }));
  assert.deepEqual(kinds(advice), ['nothing']);
  assert.match(advice[0]?.title ?? '', /no figures/);
});

test('high CPU and low memory for most of the window: scale out, naming the nodes', () => {
  const pressed = { cpuPercent: 95, memoryAvailableBytes: 1 * GB };
  const advice = adviseScale(
    input({
      nodes: [
        { name: 'a', points: hour((i) => (i < 300 ? pressed : {})) },
        { name: 'b', points: hour((i) => (i < 250 ? pressed : {})) },
        { name: 'c', points: hour((i) => (i < 100 ? pressed : {})) },
      ],
    }),
  );
  assert.deepEqual(kinds(advice), ['scale_out']);
  const [a] = advice;
  // 650 of the gateway's 1080 samples; the nodes named are those short for most of their own time.
  assert.equal(figure(a, 'time short of CPU and memory'), 60.2);
  assert.match(a?.detail ?? '', /\(a, b\)\./);
});

test("one node short among calm ones is not the gateway short: the gateway's share decides", () => {
  const pressed = { cpuPercent: 95, memoryAvailableBytes: 1 * GB };
  const advice = adviseScale(
    input({
      nodes: [
        { name: 'a', points: hour(() => pressed) },
        { name: 'b', points: hour(() => ({})) },
        { name: 'c', points: hour(() => ({})) },
      ],
    }),
  );
  assert.deepEqual(kinds(advice), ['nothing']);
});

test('pressure for less than half of the window, or CPU high with memory to spare: nothing', () => {
  const brief = adviseScale(
    input({
      nodes: [
        {
          name: 'a',
          points: hour((i) => (i < 170 ? { cpuPercent: 99, memoryAvailableBytes: 0.1 * GB } : {})),
        },
      ],
    }),
  );
  assert.deepEqual(kinds(brief), ['nothing']);
  const cpuOnly = adviseScale(input({ nodes: [{ name: 'a', points: hour(() => ({ cpuPercent: 99 })) }] }));
  assert.deepEqual(kinds(cpuOnly), ['nothing']);
  const memoryOnly = adviseScale(
    input({ nodes: [{ name: 'a', points: hour(() => ({ memoryAvailableBytes: 0.5 * GB })) }] }),
  );
  assert.deepEqual(kinds(memoryOnly), ['nothing']);
});

test('the thresholds are inclusive: CPU at exactly HIGH and memory at exactly LOW is pressure', () => {
  const at = {
    cpuPercent: HIGH_CPU_PERCENT,
    memoryAvailableBytes: (LOW_MEMORY_AVAILABLE_PERCENT / 100) * 8 * GB,
  };
  assert.deepEqual(kinds(adviseScale(input({ nodes: [{ name: 'a', points: hour(() => at) }] }))), [
    'scale_out',
  ]);
  const below = { ...at, cpuPercent: HIGH_CPU_PERCENT - 0.1 };
  assert.deepEqual(kinds(adviseScale(input({ nodes: [{ name: 'a', points: hour(() => below) }] }))), [
    'nothing',
  ]);
});

test('tasks timed out: scale out, with the count', () => {
  const advice = adviseScale(input({ attemptsTimedOut: 3 }));
  assert.deepEqual(kinds(advice), ['scale_out']);
  assert.equal(figure(advice[0], 'attempts timed out'), 3);
  assert.match(advice[0]?.detail ?? '', /3 task attempts timed out/);
});

test('a node went Offline: scale out; its Offline samples carry no figures and do not pull the averages', () => {
  const offline = {
    status: 'Offline',
    cpuPercent: null,
    memoryAvailableBytes: null,
    memoryTotalBytes: null,
    running: null,
  };
  const advice = adviseScale(
    input({
      nodes: [
        { name: 'a', points: hour(() => ({})) },
        { name: 'b', points: hour((i) => (i >= 180 ? offline : { cpuPercent: 30 })) },
      ],
      attemptsLostWithNode: 2,
    }),
  );
  assert.deepEqual(kinds(advice), ['scale_out']);
  const [a] = advice;
  assert.equal(figure(a, 'nodes that went Offline'), 1);
  assert.equal(figure(a, 'attempts lost with their node'), 2);
  assert.match(a?.detail ?? '', /b went Offline/);
});

test('CPU and memory idle, every slot busy and tasks waiting: scale up by doubling each limit', () => {
  const busy = { cpuPercent: 12, memoryAvailableBytes: 7 * GB, running: 4, limit: 4 };
  const advice = adviseScale(
    input({
      nodes: [
        { name: 'a', points: hour(() => busy) },
        { name: 'b', points: hour(() => ({ ...busy, running: 2, limit: 2 })) },
      ],
      queue: queue(() => 5, 90_000),
    }),
  );
  assert.deepEqual(kinds(advice), ['scale_up']);
  const [a] = advice;
  assert.equal(figure(a, 'time with no idle capacity'), 100);
  assert.equal(figure(a, 'time with tasks waiting'), 100);
  assert.equal(figure(a, 'longest wait in the queue'), 90);
  assert.equal(figure(a, 'concurrent jobs limit, all nodes'), 6);
  assert.equal(figure(a, 'suggested limit, all nodes'), 12);
  assert.match(a?.detail ?? '', /ferry node set-limit gw a 8; ferry node set-limit gw b 4/);
});

test('idle resources but no queue, or a queue with idle slots: nothing (more slots would not help)', () => {
  const busy = { cpuPercent: 12, running: 4, limit: 4 };
  assert.deepEqual(
    kinds(adviseScale(input({ nodes: [{ name: 'a', points: hour(() => busy) }], queue: queue(() => 0) }))),
    ['nothing'],
  );
  const idleSlots = { cpuPercent: 12, running: 2, limit: 4 };
  assert.deepEqual(
    kinds(
      adviseScale(input({ nodes: [{ name: 'a', points: hour(() => idleSlots) }], queue: queue(() => 3) })),
    ),
    ['nothing'],
  );
  // Busy CPU with every slot full and a queue: not "scale up" (the machine has nothing to spare).
  const hot = { cpuPercent: 70, running: 4, limit: 4 };
  assert.deepEqual(
    kinds(adviseScale(input({ nodes: [{ name: 'a', points: hour(() => hot) }], queue: queue(() => 3) }))),
    ['nothing'],
  );
});

test('averaged points weigh by the samples they hold', () => {
  // One 5-minute average of pressure (30 samples) against five single calm samples: pressure wins.
  const points: NodePoint[] = [
    ...hour(() => ({})).slice(0, 5),
    {
      ...hour(() => ({}))[0]!,
      at: START - 300_000,
      samples: 30,
      cpuPercent: 90,
      memoryAvailableBytes: 1 * GB,
    },
  ];
  assert.deepEqual(kinds(adviseScale(input({ nodes: [{ name: 'a', points }] }))), ['scale_out']);
});

/**
 * The scale advisor: the seed's "scale considerations" computed over a window of the metrics
 * history instead of left to the reader. Pure: it takes the window's points and counts and returns
 * advice, each with the figures behind it.
 *
 * - Scale out (add a node) when the nodes' available memory is low and their CPU high for most of
 *   the window, or when tasks timed out (an attempt's lease lapsed with no progress) or nodes went
 *   Offline (their attempts were lost with them).
 * - Scale up (raise the concurrent jobs limit, doubling it to start with) when CPU and memory are
 *   under-used but there was no idle capacity (every slot busy) while tasks waited in the queue.
 * - Otherwise, nothing to do.
 *
 * "For most of the window" is a share of the samples (SUSTAINED_SHARE), so one busy minute in an
 * hour advises nothing. Samples are weighted by how many 10 s samples each point averages, and a
 * node's samples while it was Offline carry no figures (history-points.ts): they count towards
 * "went Offline", never towards the averages.
 */
import type { NodePoint, QueuePoint } from './history-points.ts';

/** CPU at or above this (%) is high. */
export const HIGH_CPU_PERCENT = 80;
/** Available memory at or below this share of the machine's memory (%) is low. */
export const LOW_MEMORY_AVAILABLE_PERCENT = 20;
/** CPU below this (%) is under-used. */
export const IDLE_CPU_PERCENT = 50;
/** Available memory above this share of the machine's memory (%) is under-used. */
export const IDLE_MEMORY_AVAILABLE_PERCENT = 50;
/** A condition holds over the window when it holds in at least this share of its samples. */
export const SUSTAINED_SHARE = 0.5;
/** Scale up by this factor to start with (the seed: "we suggest doubling it"). */
export const SCALE_UP_FACTOR = 2;

export type AdviceKind = 'scale_out' | 'scale_up' | 'nothing';

export interface Figure {
  name: string;
  value: number;
  unit: string;
}

export interface Advice {
  kind: AdviceKind;
  title: string;
  detail: string;
  figures: Figure[];
}

export interface AdviceInput {
  gateway: string;
  /** The window's length, in words for the detail ("1h"). */
  window: string;
  nodes: readonly { name: string; points: readonly NodePoint[] }[];
  queue: readonly QueuePoint[];
  /** Attempts whose lease lapsed with no progress in the window. */
  attemptsTimedOut: number;
  /** Attempts lost because their node went Offline in the window. */
  attemptsLostWithNode: number;
}

interface Weighted {
  sum: number;
  weight: number;
}
const mean = (w: Weighted): number => (w.weight === 0 ? 0 : w.sum / w.weight);
const add = (w: Weighted, value: number, weight: number): void => {
  w.sum += value * weight;
  w.weight += weight;
};
const round = (v: number, digits = 1): number => Math.round(v * 10 ** digits) / 10 ** digits;
const pct = (share: number): number => round(share * 100);

/** The figures the rules read, over the whole window. */
interface WindowFigures {
  reportingSamples: number;
  cpuPercent: number;
  memoryAvailablePercent: number;
  /** Share of reporting samples with high CPU and low memory at once. */
  pressureShare: number;
  /** Nodes with high CPU and low memory for most of their own samples. */
  pressedNodes: string[];
  /** Nodes that were Offline at some point of the window. */
  offlineNodes: string[];
  /** Share of sample times when every slot of the reporting nodes was busy. */
  fullShare: number;
  /** Share of queue samples with tasks waiting. */
  waitingShare: number;
  longestWaitSeconds: number;
  /** Each reporting node's latest limit. */
  limits: { name: string; limit: number }[];
}

function measure(input: AdviceInput): WindowFigures {
  const cpu: Weighted = { sum: 0, weight: 0 };
  const memory: Weighted = { sum: 0, weight: 0 };
  const pressure: Weighted = { sum: 0, weight: 0 };
  const pressedNodes: string[] = [];
  const offlineNodes: string[] = [];
  const limits: { name: string; limit: number }[] = [];
  /** Per sample time: jobs running and the limit, over the nodes reporting then. */
  const capacity = new Map<number, { running: number; limit: number; weight: number }>();
  for (const node of input.nodes) {
    const mine: Weighted = { sum: 0, weight: 0 };
    let latestLimit: number | undefined;
    for (const p of node.points) {
      if (p.status === 'Offline') {
        if (!offlineNodes.includes(node.name)) offlineNodes.push(node.name);
        continue;
      }
      if (p.running !== null) {
        const c = capacity.get(p.at) ?? { running: 0, limit: 0, weight: p.samples };
        c.running += p.running;
        c.limit += p.limit;
        capacity.set(p.at, c);
        latestLimit = p.limit;
      }
      if (p.cpuPercent === null || p.memoryAvailableBytes === null || !p.memoryTotalBytes) continue;
      const memoryPercent = (100 * p.memoryAvailableBytes) / p.memoryTotalBytes;
      const pressed = p.cpuPercent >= HIGH_CPU_PERCENT && memoryPercent <= LOW_MEMORY_AVAILABLE_PERCENT;
      add(cpu, p.cpuPercent, p.samples);
      add(memory, memoryPercent, p.samples);
      add(pressure, pressed ? 1 : 0, p.samples);
      add(mine, pressed ? 1 : 0, p.samples);
    }
    if (mine.weight > 0 && mean(mine) >= SUSTAINED_SHARE) pressedNodes.push(node.name);
    if (latestLimit !== undefined) limits.push({ name: node.name, limit: Math.round(latestLimit) });
  }
  const full: Weighted = { sum: 0, weight: 0 };
  for (const c of capacity.values()) add(full, c.limit > 0 && c.running >= c.limit ? 1 : 0, c.weight);
  const waiting: Weighted = { sum: 0, weight: 0 };
  for (const q of input.queue) add(waiting, q.queued > 0 ? 1 : 0, q.samples);
  return {
    reportingSamples: cpu.weight,
    cpuPercent: round(mean(cpu)),
    memoryAvailablePercent: round(mean(memory)),
    pressureShare: mean(pressure),
    pressedNodes,
    offlineNodes,
    fullShare: mean(full),
    waitingShare: mean(waiting),
    longestWaitSeconds: round(Math.max(0, ...input.queue.map((q) => q.oldestWaitMs)) / 1000),
    limits,
  };
}

/** The advice for a gateway over a window; never empty ("nothing to do" has its figures too). */
export function adviseScale(input: AdviceInput): Advice[] {
  const f = measure(input);
  const advice: Advice[] = [];
  const usage: Figure[] = [
    { name: 'average CPU', value: f.cpuPercent, unit: '%' },
    { name: 'average available memory', value: f.memoryAvailablePercent, unit: '%' },
  ];

  if (f.reportingSamples > 0 && f.pressureShare >= SUSTAINED_SHARE) {
    advice.push({
      kind: 'scale_out',
      title: 'Add a node: the nodes are short of CPU and memory',
      detail:
        `For ${pct(f.pressureShare)}% of the last ${input.window}, CPU was at or above ${HIGH_CPU_PERCENT}% ` +
        `while available memory was at or below ${LOW_MEMORY_AVAILABLE_PERCENT}%` +
        `${f.pressedNodes.length > 0 ? ` (${f.pressedNodes.join(', ')})` : ''}. ` +
        'Raising the limit would only add to the load: register another node with the gateway.',
      figures: [...usage, { name: 'time short of CPU and memory', value: pct(f.pressureShare), unit: '%' }],
    });
  }

  if (input.attemptsTimedOut > 0 || input.attemptsLostWithNode > 0 || f.offlineNodes.length > 0) {
    const causes: string[] = [];
    if (input.attemptsTimedOut > 0) causes.push(`${input.attemptsTimedOut} task attempts timed out`);
    if (f.offlineNodes.length > 0) causes.push(`${f.offlineNodes.join(', ')} went Offline`);
    if (input.attemptsLostWithNode > 0)
      causes.push(`${input.attemptsLostWithNode} attempts were lost with their node`);
    advice.push({
      kind: 'scale_out',
      title: 'Add a node: tasks timed out or nodes went Offline',
      detail:
        `In the last ${input.window}, ${causes.join('; ')}. Another node keeps the gateway's capacity ` +
        'when one fails; see the gateway events for what happened, and bring back or delete a node that stays Offline.',
      figures: [
        { name: 'attempts timed out', value: input.attemptsTimedOut, unit: 'attempts' },
        { name: 'attempts lost with their node', value: input.attemptsLostWithNode, unit: 'attempts' },
        { name: 'nodes that went Offline', value: f.offlineNodes.length, unit: 'nodes' },
      ],
    });
  }

  const underUsed =
    f.reportingSamples > 0 &&
    f.cpuPercent < IDLE_CPU_PERCENT &&
    f.memoryAvailablePercent > IDLE_MEMORY_AVAILABLE_PERCENT;
  if (underUsed && f.fullShare >= SUSTAINED_SHARE && f.waitingShare >= SUSTAINED_SHARE) {
    const total = f.limits.reduce((a, n) => a + n.limit, 0);
    advice.push({
      kind: 'scale_up',
      title: 'Raise the concurrent jobs limit: CPU and memory are to spare while tasks wait',
      detail:
        `For ${pct(f.fullShare)}% of the last ${input.window} every slot was busy and tasks waited in the queue ` +
        `(for up to ${f.longestWaitSeconds} s), while CPU averaged ${f.cpuPercent}% and ` +
        `${f.memoryAvailablePercent}% of memory was available. Double the limit to start with: ` +
        f.limits
          .map((n) => `ferry node set-limit ${input.gateway} ${n.name} ${n.limit * SCALE_UP_FACTOR}`)
          .join('; ') +
        '.',
      figures: [
        ...usage,
        { name: 'time with no idle capacity', value: pct(f.fullShare), unit: '%' },
        { name: 'time with tasks waiting', value: pct(f.waitingShare), unit: '%' },
        { name: 'longest wait in the queue', value: f.longestWaitSeconds, unit: 's' },
        { name: 'concurrent jobs limit, all nodes', value: total, unit: 'jobs' },
        { name: 'suggested limit, all nodes', value: total * SCALE_UP_FACTOR, unit: 'jobs' },
      ],
    });
  }

  if (advice.length > 0) return advice;
  if (f.reportingSamples === 0)
    return [
      {
        kind: 'nothing',
        title: 'Nothing to advise yet: no figures in this window',
        detail: `No node of ${input.gateway} reported figures in the last ${input.window}; advice needs history.`,
        figures: [{ name: 'samples', value: 0, unit: 'samples' }],
      },
    ];
  return [
    {
      kind: 'nothing',
      title: 'Nothing to do',
      detail:
        `In the last ${input.window}, CPU averaged ${f.cpuPercent}% with ${f.memoryAvailablePercent}% of memory ` +
        `available, no task timed out, no node went Offline, and tasks waited in the queue ` +
        `${pct(f.waitingShare)}% of the time: the gateway fits its load.`,
      figures: [
        ...usage,
        { name: 'time with no idle capacity', value: pct(f.fullShare), unit: '%' },
        { name: 'time with tasks waiting', value: pct(f.waitingShare), unit: '%' },
      ],
    },
  ];
}

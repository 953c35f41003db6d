/**
 * Metrics history points as the API, the advisor and the store's compaction see them, and the one
 * way they are averaged into coarser buckets. Pure: no store, no clock.
 *
 * Averaging: each figure is the mean of the points that have it, weighted by how many 10 s samples
 * each point already averages (a figure is null where the node was not reporting, and such points
 * do not pull the mean down to zero); the status is the worst status in the bucket, so a node that
 * was Offline for 10 s of a 5-minute bucket shows Offline there: an outage is never averaged away.
 */
import type { NodeStatus } from '../protocol/statuses.ts';

export interface NodePoint {
  /** Bucket start, ms. */
  at: number;
  /** How many 10 s samples this point averages. */
  samples: number;
  status: string;
  cpuPercent: number | null;
  memoryAvailableBytes: number | null;
  memoryTotalBytes: number | null;
  networkInBytesPerSec: number | null;
  networkOutBytesPerSec: number | null;
  /** Jobs running (null while not reporting). */
  running: number | null;
  /** The concurrent jobs limit. */
  limit: number;
}

export interface QueuePoint {
  at: number;
  samples: number;
  /** Tasks queued and due. */
  queued: number;
  /** How long the oldest of them had waited; for an average, the longest in the bucket. */
  oldestWaitMs: number;
}

/** Worst first: the status an averaged point shows is the earliest here that any of its samples had. */
const STATUS_SEVERITY: readonly NodeStatus[] = ['Offline', 'Inactive', 'Limited', 'Upgrading', 'Online'];

export function worstStatus(statuses: Iterable<string>): string {
  let best = Number.POSITIVE_INFINITY;
  let unknown: string | undefined;
  for (const s of statuses) {
    const i = STATUS_SEVERITY.indexOf(s as NodeStatus);
    if (i < 0) unknown ??= s;
    else best = Math.min(best, i);
  }
  return STATUS_SEVERITY[best] ?? unknown ?? 'Offline';
}

type Figure =
  | 'cpuPercent'
  | 'memoryAvailableBytes'
  | 'memoryTotalBytes'
  | 'networkInBytesPerSec'
  | 'networkOutBytesPerSec'
  | 'running';
const FIGURES: readonly Figure[] = [
  'cpuPercent',
  'memoryAvailableBytes',
  'memoryTotalBytes',
  'networkInBytesPerSec',
  'networkOutBytesPerSec',
  'running',
];

function groupByBucket<P extends { at: number }>(points: readonly P[], bucketMs: number): Map<number, P[]> {
  const out = new Map<number, P[]>();
  for (const p of points) {
    const at = Math.floor(p.at / bucketMs) * bucketMs;
    const list = out.get(at);
    if (list) list.push(p);
    else out.set(at, [p]);
  }
  return out;
}

function weightedMean(values: [value: number, weight: number][]): number {
  let sum = 0;
  let weight = 0;
  for (const [v, w] of values) {
    sum += v * w;
    weight += w;
  }
  return weight === 0 ? 0 : sum / weight;
}

/** One node's points averaged into buckets of `bucketMs`, oldest first. */
export function averageNodePoints(points: readonly NodePoint[], bucketMs: number): NodePoint[] {
  const out: NodePoint[] = [];
  for (const [at, group] of groupByBucket(points, bucketMs)) {
    const point: NodePoint = {
      at,
      samples: group.reduce((a, p) => a + p.samples, 0),
      status: worstStatus(group.map((p) => p.status)),
      cpuPercent: null,
      memoryAvailableBytes: null,
      memoryTotalBytes: null,
      networkInBytesPerSec: null,
      networkOutBytesPerSec: null,
      running: null,
      limit: weightedMean(group.map((p) => [p.limit, p.samples])),
    };
    for (const f of FIGURES) {
      const have = group.filter((p) => p[f] !== null).map((p): [number, number] => [p[f] ?? 0, p.samples]);
      point[f] = have.length === 0 ? null : weightedMean(have);
    }
    out.push(point);
  }
  return out.sort((a, b) => a.at - b.at);
}

/** A gateway's queue points averaged into buckets of `bucketMs`, oldest first. */
export function averageQueuePoints(points: readonly QueuePoint[], bucketMs: number): QueuePoint[] {
  const out: QueuePoint[] = [];
  for (const [at, group] of groupByBucket(points, bucketMs)) {
    out.push({
      at,
      samples: group.reduce((a, p) => a + p.samples, 0),
      queued: weightedMean(group.map((p) => [p.queued, p.samples])),
      oldestWaitMs: Math.max(...group.map((p) => p.oldestWaitMs)),
    });
  }
  return out.sort((a, b) => a.at - b.at);
}

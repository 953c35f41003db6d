/**
 * Ferry and its peer take turns (A B A B ...): round 0 is a warm-up for each (caches, JIT, the
 * table's pages), then BENCH_RUNS counted rounds (default 3). On a shared, noisy machine a slow
 * moment then hits both sides of a round alike, so the ratio is taken round by round and its median
 * and spread reported, beside each side's median time.
 *
 * Each contender's run verifies its own output and throws when it is wrong: a fast wrong answer ends
 * the benchmark rather than counting.
 */
import { median } from './lib.ts';

export interface Sample {
  ms: number;
  /** Peak RSS of Ferry's node processes during the run (absent for peers). */
  rssPeakBytes?: number;
  /** The same with the nodes' child processes added (only when they had any). */
  rssTreePeakBytes?: number;
  /** CPU seconds per process over the run (Ferry's nodes and service, the peer, the store's emulator). */
  cpu?: Record<string, number>;
  /** Anything else worth keeping in the results (rows, bytes, checksum). */
  detail?: Record<string, unknown>;
}

export interface Contender {
  name: string;
  /** One run, verified; `round` 0 is the warm-up. */
  run(round: number): Promise<Sample>;
}

export interface Spread {
  median: number;
  min: number;
  max: number;
}

export interface Comparison {
  warmups: number;
  rounds: { round: number; counted: boolean; samples: Record<string, Sample> }[];
  /** Per contender, over counted rounds: wall time in ms. */
  times: Record<string, Spread>;
}

export const RUNS = Number(process.env['BENCH_RUNS'] ?? 3);
export const WARMUPS = Number(process.env['BENCH_WARMUPS'] ?? 1);

export function spread(values: readonly number[]): Spread {
  return { median: median([...values]), min: Math.min(...values), max: Math.max(...values) };
}

export async function alternate(
  bench: string,
  contenders: readonly Contender[],
  o: { runs?: number; warmups?: number } = {},
): Promise<Comparison> {
  const runs = o.runs ?? RUNS;
  const warmups = o.warmups ?? WARMUPS;
  const rounds: Comparison['rounds'] = [];
  for (let round = 0; round < warmups + runs; round++) {
    const counted = round >= warmups;
    const samples: Record<string, Sample> = {};
    for (const c of contenders) {
      const s = await c.run(round);
      samples[c.name] = s;
      const tree =
        s.rssTreePeakBytes !== undefined && s.rssTreePeakBytes > (s.rssPeakBytes ?? 0)
          ? ` (${mib(s.rssTreePeakBytes)} MiB with child processes)`
          : '';
      const rss = s.rssPeakBytes === undefined ? '' : `, peak RSS ${mib(s.rssPeakBytes)} MiB${tree}`;
      const cpu = s.cpu
        ? `, CPU s ${Object.entries(s.cpu)
            .map(([k, v]) => `${k} ${v.toFixed(1)}`)
            .join(' ')}`
        : '';
      process.stderr.write(
        `${bench} ${counted ? `round ${round - warmups + 1}` : 'warm-up'}: ${c.name} ${(s.ms / 1000).toFixed(2)} s${rss}${cpu} (verified)\n`,
      );
    }
    rounds.push({ round, counted, samples });
  }
  const times: Record<string, Spread> = {};
  for (const c of contenders)
    times[c.name] = spread(rounds.filter((r) => r.counted).map((r) => r.samples[c.name]!.ms));
  return { warmups, rounds, times };
}

/**
 * Ferry's speed relative to the peer's, round by round: peer time / Ferry time, so 1.2 means Ferry
 * took 1/1.2 of the peer's time (the targets in BENCHMARKS.md are in this sense).
 */
export function speedRatio(c: Comparison, ferry: string, peer: string): Spread {
  return spread(c.rounds.filter((r) => r.counted).map((r) => r.samples[peer]!.ms / r.samples[ferry]!.ms));
}

/** The largest peak RSS a contender reached in any round, warm-up included. */
export function maxRss(c: Comparison, name: string): number {
  return Math.max(0, ...c.rounds.map((r) => r.samples[name]?.rssPeakBytes ?? 0));
}

export function mib(bytes: number): number {
  return Math.round(bytes / 2 ** 20);
}

/**
 * Pure arithmetic of range partitioning, the same for every SQL source: N-1 cut points between a
 * column's min and max, and the ranges they make. The first range is open below and also takes
 * NULLs, the last is open above, so the ranges cover every row (values outside [min, max] included)
 * and each row falls in exactly one.
 *
 * Cut points are strictly increasing and strictly above min; duplicates (3 distinct values asked
 * for 8 ranges) are dropped, so there are never empty-width ranges, just fewer of them.
 */
import type { PartitionT } from '../protocol/task.ts';

export type RangePartitionT = Extract<PartitionT, { kind: 'range' }>;

/** Exact cut points for integer-valued domains (integers, epoch microseconds, epoch days). */
export function splitIntegers(lo: bigint, hi: bigint, n: number): bigint[] {
  const cuts: bigint[] = [];
  const span = hi - lo;
  const parts = BigInt(n);
  let previous = lo;
  for (let i = 1n; i < parts; i++) {
    const cut = lo + (span * i) / parts;
    if (cut > previous) {
      cuts.push(cut);
      previous = cut;
    }
  }
  return cuts;
}

/** Cut points for numeric and floating point columns; precision is not needed, only order. */
export function splitNumbers(lo: number, hi: number, n: number): number[] {
  if (!Number.isFinite(lo) || !Number.isFinite(hi)) return [];
  const cuts: number[] = [];
  let previous = lo;
  for (let i = 1; i < n; i++) {
    const t = i / n;
    // The second form cannot overflow when hi - lo exceeds the largest double.
    let cut = lo + (hi - lo) * t;
    if (!Number.isFinite(cut)) cut = lo * (1 - t) + hi * t;
    if (cut > previous && cut <= hi) {
      cuts.push(cut);
      previous = cut;
    }
  }
  return cuts;
}

/** The ranges made by sorted cut points (as text); one cut makes two ranges, none makes none. */
export function rangePartitions(column: string, cuts: readonly string[]): RangePartitionT[] {
  const unique = cuts.filter((c, i) => i === 0 || c !== cuts[i - 1]);
  if (unique.length === 0) return [];
  const ranges: RangePartitionT[] = [];
  let lo: string | null = null;
  for (const cut of unique) {
    ranges.push({ kind: 'range', column, lo, hi: cut, includeNulls: lo === null });
    lo = cut;
  }
  ranges.push({ kind: 'range', column, lo, hi: null, includeNulls: false });
  return ranges;
}

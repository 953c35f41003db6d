import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { rangePartitions, splitIntegers, splitNumbers, type RangePartitionT } from './range-partitions.ts';

/** The ranges `value` falls in (lo inclusive, hi exclusive, as the sources' SQL reads them). */
function holding(ranges: readonly RangePartitionT[], value: bigint | null): number {
  return ranges.filter((r) =>
    value === null
      ? r.includeNulls
      : (r.lo === null || value >= BigInt(r.lo)) && (r.hi === null || value < BigInt(r.hi)),
  ).length;
}

function assertIncreasing<T extends bigint | number>(cuts: readonly T[], lo: T, hi: T): void {
  for (const [i, cut] of cuts.entries()) {
    assert.ok(cut > (i === 0 ? lo : cuts[i - 1]!), `cut ${i} (${cut}) is above the one before`);
    assert.ok(cut <= hi, `cut ${i} (${cut}) is within the column's max`);
  }
}

describe('splitIntegers', () => {
  it('cuts a span into equal parts', () => {
    assert.deepEqual(splitIntegers(0n, 100n, 4), [25n, 50n, 75n]);
    assert.deepEqual(splitIntegers(-100n, 100n, 4), [-50n, 0n, 50n]);
    assert.deepEqual(splitIntegers(1n, 5_000_000n, 1), []);
  });

  it('is exact past 2^63 (BIGINT UNSIGNED) and past 2^53', () => {
    const hi = 2n ** 64n - 1n;
    const cuts = splitIntegers(0n, hi, 3);
    assert.deepEqual(cuts, [hi / 3n, (hi * 2n) / 3n]);
    assertIncreasing(cuts, 0n, hi);
    const near = 2n ** 53n;
    assert.deepEqual(splitIntegers(near, near + 4n, 4), [near + 1n, near + 2n, near + 3n]);
  });

  it('drops repeated cuts: fewer distinct values than parts make fewer ranges, none of them empty', () => {
    assert.deepEqual(splitIntegers(0n, 2n, 8), [1n]);
    assert.deepEqual(splitIntegers(7n, 7n, 8), []);
    // Two values: no cut lies strictly above the lower one, and the source copies the table whole.
    assert.deepEqual(splitIntegers(5n, 6n, 8), []);
    assert.deepEqual(splitIntegers(0n, 3n, 3), [1n, 2n]);
  });
});

describe('splitNumbers', () => {
  it('cuts a span into equal parts, in order', () => {
    assert.deepEqual(splitNumbers(0, 1, 4), [0.25, 0.5, 0.75]);
    assert.deepEqual(splitNumbers(-1, 1, 2), [0]);
  });

  it('gives no cuts for bounds that are not finite, or a single value', () => {
    assert.deepEqual(splitNumbers(Number.NaN, 1, 4), []);
    assert.deepEqual(splitNumbers(0, Number.POSITIVE_INFINITY, 4), []);
    assert.deepEqual(splitNumbers(Number.NEGATIVE_INFINITY, 0, 4), []);
    assert.deepEqual(splitNumbers(2.5, 2.5, 4), []);
  });

  it('stays finite and increasing across the whole range of doubles', () => {
    const cuts = splitNumbers(-Number.MAX_VALUE, Number.MAX_VALUE, 4);
    assert.equal(cuts.length, 3);
    assert.ok(cuts.every(Number.isFinite));
    assertIncreasing(cuts, -Number.MAX_VALUE, Number.MAX_VALUE);
  });

  it('drops cuts a span too narrow to hold them would repeat', () => {
    const lo = 1;
    const hi = 1 + 2 * Number.EPSILON; // two doubles above lo
    const cuts = splitNumbers(lo, hi, 8);
    assert.ok(cuts.length >= 1 && cuts.length <= 2, `${cuts.length} cuts`);
    assertIncreasing(cuts, lo, hi);
  });
});

describe('rangePartitions', () => {
  it('makes one more range than cuts: the first open below with the NULLs, the last open above', () => {
    assert.deepEqual(rangePartitions('id', ['10', '20']), [
      { kind: 'range', column: 'id', lo: null, hi: '10', includeNulls: true },
      { kind: 'range', column: 'id', lo: '10', hi: '20', includeNulls: false },
      { kind: 'range', column: 'id', lo: '20', hi: null, includeNulls: false },
    ]);
    assert.deepEqual(rangePartitions('id', []), []);
  });

  it('drops a repeated cut (two cuts formatted alike), so no range is empty', () => {
    const ranges = rangePartitions('d', ['2024-01-01', '2024-01-01', '2024-06-01']);
    assert.deepEqual(
      ranges.map((r) => [r.lo, r.hi]),
      [
        [null, '2024-01-01'],
        ['2024-01-01', '2024-06-01'],
        ['2024-06-01', null],
      ],
    );
  });

  it('puts every value, below, within and above the bounds found, and NULL, in exactly one range', () => {
    for (const [lo, hi, n] of [
      [0n, 100n, 4],
      [-37n, 1_000n, 7],
      [5n, 7n, 8],
      [2n ** 63n - 10n, 2n ** 63n + 10n, 3],
    ] as const) {
      const ranges = rangePartitions('id', splitIntegers(lo, hi, n).map(String));
      assert.ok(ranges.length > 1 && ranges.length <= n, `${ranges.length} ranges`);
      for (let v = lo - 3n; v <= hi + 3n; v++)
        assert.equal(holding(ranges, v), 1, `${v} in [${lo}, ${hi}]/${n}`);
      assert.equal(holding(ranges, null), 1, 'NULL');
    }
  });
});

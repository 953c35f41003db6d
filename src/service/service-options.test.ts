/** The metrics history's retention options: defaults, and the values refused with the reason. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { compileServiceOptions } from './service-options.ts';
import { FerryError } from '../common/errors.ts';

test('metrics retention: 24 h of 10 s samples and 7 days of averages by default; nonsense refused', () => {
  const d = compileServiceOptions({});
  assert.equal(d.metricsRetentionHours, 24);
  assert.equal(d.metricsAverageRetentionDays, 7);
  const set = compileServiceOptions({ metricsRetentionHours: 6, metricsAverageRetentionDays: 30 });
  assert.deepEqual([set.metricsRetentionHours, set.metricsAverageRetentionDays], [6, 30]);
  for (const [options, message] of [
    [
      { metricsRetentionHours: 0.5 },
      /metricsRetentionHours must be a number of hours of at least 1 \(got 0\.5\)/,
    ],
    [{ metricsRetentionHours: Number.NaN }, /metricsRetentionHours/],
    [
      { metricsAverageRetentionDays: 0.5 },
      /metricsAverageRetentionDays must be a number of days covering at least metricsRetentionHours \(got 0\.5\)/,
    ],
    [
      { metricsRetentionHours: 72, metricsAverageRetentionDays: 2 },
      /covering at least metricsRetentionHours/,
    ],
  ] as const)
    assert.throws(
      () => compileServiceOptions(options),
      (err) => err instanceof FerryError && err.code === 'bad_request' && message.test(err.message),
    );
});

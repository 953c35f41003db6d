/**
 * Read checks: a plan and its partitions read back exactly what was stored, and nothing from an
 * empty place; a partition of a kind the source does not plan is a bad_request; an object gone
 * since the plan is store_object_missing naming it.
 */
import assert from 'node:assert/strict';
import { describe } from 'node:test';
import type { PartitionT } from '../../protocol/task.ts';
import type { ConformanceKit } from './conformance-kit.ts';
import { rejection } from './conformance-kit.ts';
import { COLUMNS, empty, normalised, sample, summary } from './conformance-data.ts';
import { EXPECTED_FAILURE } from './conformance-harness.ts';

export function readChecks(kit: ConformanceKit): void {
  const { harness, kind } = kit;
  describe('read', () => {
    kit.sourceCheck('plans partitions and reads back exactly what was stored', async (source, place) => {
      const data = sample(kind);
      await place.seed(data);
      const endpoint = { ...place.source, options: { ...place.source.options, ...harness.splitOptions } };
      const { partitions } = await source.plan(endpoint, kit.planCtx());
      assert.ok(partitions.length >= 2, `split options give several partitions, got ${partitions.length}`);
      const read = await kit.readAll(source, endpoint, partitions, kit.newRun());
      assert.deepEqual(summary(read), summary(data));
      if (read.kind === 'files') assert.deepEqual(read, normalised(read), 'files are read in name order');
      const described = await source.describe?.(endpoint, kit.planCtx());
      if (kind === 'files') assert.equal(described, undefined, 'files read as-is describe no columns');
      else {
        assert.deepEqual(
          described?.map((c) => [c.name, c.type]),
          COLUMNS.map((c) => [c.name, c.type]),
          'the columns a table source describes',
        );
      }
    });

    kit.sourceCheck('reads nothing from an empty place', async (source, place) => {
      await place.seed(empty(kind));
      const { partitions } = await source.plan(place.source, kit.planCtx());
      assert.deepEqual(summary(await kit.readAll(source, place.source, partitions, kit.newRun())), []);
    });

    kit.sourceCheck('refuses a partition of a kind it does not plan (bad_request)', async (source, place) => {
      await place.seed(sample(kind));
      const foreign: PartitionT =
        kind === 'files' ? { kind: 'whole' } : { kind: 'files', files: [{ path: 'a.txt', size: 1 }] };
      const reading = (async () => {
        for await (const object of source.read(
          place.source,
          foreign,
          kit.attemptCtx(kit.newRun(), 0, 'a1'),
        )) {
          object.stream.destroy();
        }
      })();
      const expected = { code: 'bad_request', retryable: false } as const;
      kit.assertFailure(await rejection(reading), expected, place.source, [], place.secrets);
    });

    kit.sourceCheck(
      'an object gone since the plan is store_object_missing naming it',
      async (source, place) => {
        await place.seed(sample(kind));
        const { partitions } = await source.plan(place.source, kit.planCtx());
        await place.unseed();
        const [first] = partitions;
        assert.ok(first);
        // A missing file is named itself; a missing table by its name.
        const file = first.kind === 'files' ? first.files[0]?.path : undefined;
        const mentions = [place.sourceName, ...(file === undefined ? [] : [file])];
        const err = await rejection(kit.readAll(source, place.source, [first], kit.newRun()));
        kit.assertFailure(err, EXPECTED_FAILURE.missing_object, place.source, mentions, place.secrets);
      },
    );
  });
}

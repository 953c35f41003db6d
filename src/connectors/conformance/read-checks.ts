/**
 * Read checks: a plan and its partitions read back exactly what was stored, and nothing from an
 * empty place; a partition of a kind the source does not plan is a bad_request; an object gone
 * since the plan is store_object_missing naming it.
 */
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { describe } from 'node:test';
import { FerryError } from '../../common/errors.ts';
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

    if (kind === 'files') {
      kit.sourceCheck(
        'peeks at any bytes of a file apart from its stream, of the file as it was opened',
        async (source, place) => {
          const data = sample(kind);
          await place.seed(data);
          const { partitions } = await source.plan(place.source, kit.planCtx());
          const stored = new Map(data.kind === 'files' ? data.files.map((f) => [f.name, f.data]) : []);
          const big = [...stored].find(([, b]) => b.length > 1024 * 1024)!;
          let peeked = 0;
          for (const partition of partitions) {
            for await (const object of source.read(
              place.source,
              partition,
              kit.attemptCtx(kit.newRun(), 0, 'a1'),
            )) {
              try {
                const want = stored.get(object.name)!;
                assert.ok(object.peek, `${object.name}: a file source offers peek`);
                assert.equal(object.peek.size, want.length, `${object.name}: size`);
                if (object.name !== big[0]) continue;
                peeked++;
                const tail = await object.peek.read(want.length - 8, 8);
                assert.ok(tail.equals(want.subarray(want.length - 8)), 'the last 8 bytes');
                const middle = await object.peek.read(1_000_000, 300_000);
                assert.ok(middle.equals(want.subarray(1_000_000, 1_300_000)), '300,000 bytes from 1,000,000');
                assert.equal((await object.peek.read(want.length - 3, 10)).length, 3, 'short at the end');
                // Replaced since it was opened: the bytes as opened, or an error, never the new ones.
                if (harness.limits.conditionalReads) continue;
                await place.seed({
                  kind: 'files',
                  files: [{ name: big[0], data: randomBytes(want.length) }],
                });
                const after = await object.peek.read(0, 64 * 1024).then(
                  (b) => b,
                  (err: unknown) => err,
                );
                if (Buffer.isBuffer(after))
                  assert.ok(after.equals(want.subarray(0, 64 * 1024)), 'the bytes as the file was opened');
                else assert.ok(after instanceof FerryError, `a FerryError, got ${String(after)}`);
              } finally {
                object.stream.destroy();
              }
            }
          }
          assert.equal(peeked, 1);
        },
      );
    }

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

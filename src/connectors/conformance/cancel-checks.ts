/**
 * Cancel checks: the attempt's signal cancels a plan, a read mid-stream and a stage mid-stream
 * promptly, and a commit after it, with a 'cancelled' FerryError and nothing published.
 */
import assert from 'node:assert/strict';
import { once } from 'node:events';
import { performance } from 'node:perf_hooks';
import { finished } from 'node:stream/promises';
import { describe } from 'node:test';
import type { ConformanceKit } from './conformance-kit.ts';
import { rejection } from './conformance-kit.ts';
import { COLUMNS, attemptOutput, empty, endless, large, partName, sample } from './conformance-data.ts';

/** A stage is cancelled once this much has gone in: past a first 16 MiB block or 8 MiB part. */
const CANCEL_AFTER_BYTES = 20 * 1024 * 1024;

export function cancelChecks(kit: ConformanceKit): void {
  const { kind } = kit;
  describe('cancel', () => {
    kit.sourceCheck('a plan under an aborted signal is cancelled', async (source, place) => {
      await place.seed(sample(kind));
      const controller = new AbortController();
      controller.abort();
      const err = await rejection(source.plan(place.source, kit.planCtx(controller.signal)));
      kit.assertFailure(err, { code: 'cancelled' }, place.source, [], place.secrets);
    });

    kit.sourceCheck(
      'aborting the signal mid-read fails the stream with cancelled, promptly',
      async (source, place) => {
        await place.seed(large(kind));
        const { partitions } = await source.plan(place.source, kit.planCtx());
        const [partition] = partitions;
        assert.ok(partition);
        const controller = new AbortController();
        const ctx = kit.attemptCtx(kit.newRun(), 0, 'a1', controller.signal);
        const objects = source.read(place.source, partition, ctx)[Symbol.asyncIterator]();
        try {
          const first = await objects.next();
          assert.ok(first.done !== true);
          const stream = first.value.stream;
          await once(stream, 'data');
          stream.pause();
          const abortedAt = performance.now();
          controller.abort();
          await kit.assertCancelledPromptly(finished(stream), () => abortedAt, place.source, place.secrets);
        } finally {
          await objects.return?.();
        }
      },
    );

    kit.sinkCheck(
      'aborting the signal mid-stage fails it with cancelled, promptly, and publishes nothing',
      async (sink, place) => {
        const run = kit.newRun();
        await kit.prepare(sink, place.sink, run);
        const controller = new AbortController();
        const writer = await sink.open(place.sink, kit.attemptCtx(run, 0, 'a1', controller.signal));
        let abortedAt = 0;
        // Only the signal can end this stage.
        const source = endless(kind, (sent) => {
          if (sent >= CANCEL_AFTER_BYTES && !controller.signal.aborted) {
            abortedAt = performance.now();
            controller.abort();
          }
        });
        const name = kind === 'files' ? 'endless.bin' : partName(0);
        const staging = writer.stage({
          name,
          stream: source,
          ...(kind === 'table' ? { columns: COLUMNS } : {}),
        });
        await kit.assertCancelledPromptly(staging, () => abortedAt, place.sink, place.secrets);
        assert.ok(source.destroyed, 'the source stream is destroyed');
        await writer.abort();
        await kit.assertVisible(place, empty(kind), 'after the cancelled stage');
      },
    );

    kit.sinkCheck(
      'a commit after the signal aborted is cancelled and publishes nothing',
      async (sink, place) => {
        const run = kit.newRun();
        await kit.prepare(sink, place.sink, run);
        const controller = new AbortController();
        const writer = await sink.open(place.sink, kit.attemptCtx(run, 0, 'a1', controller.signal));
        await kit.stageAll(writer, attemptOutput(kind, 1), 0);
        controller.abort();
        const err = await rejection(writer.commit());
        kit.assertFailure(err, { code: 'cancelled' }, place.sink, [], place.secrets);
        await writer.abort();
        await kit.assertVisible(place, empty(kind), 'after the cancelled commit');
      },
    );
  });
}

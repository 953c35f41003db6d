/**
 * Write checks, the sink commit rules: a commit publishes exactly what was staged, with the figures
 * verification compares; nothing is visible before commit; abort publishes nothing and leaves
 * nothing behind; an aborted attempt refuses further work; a second committed attempt of a task
 * replaces the first, and a retry started while a stale attempt still runs adds no copy; a failing
 * source fails the stage with its own error; a files sink refuses names that escape it.
 */
import assert from 'node:assert/strict';
import { Readable } from 'node:stream';
import { describe } from 'node:test';
import { inspect } from 'node:util';
import { FerryError } from '../../common/errors.ts';
import type { ConformanceKit } from './conformance-kit.ts';
import { rejection } from './conformance-kit.ts';
import { attemptOutput, empty, sample, stagings, streamOf } from './conformance-data.ts';

export function writeChecks(kit: ConformanceKit): void {
  const { harness, kind } = kit;
  describe('write', () => {
    kit.sinkCheck('commit publishes exactly what was staged, with the right figures', async (sink, place) => {
      const run = kit.newRun();
      const data = sample(kind);
      await kit.prepare(sink, place.sink, run);
      const writer = await sink.open(place.sink, kit.attemptCtx(run, 0, 'a1'));
      await kit.stageAll(writer, data, 0);
      await writer.commit();
      await kit.assertVisible(place, data, 'what a reader sees after commit');
    });

    kit.sinkCheck(
      'nothing is visible before commit; a repeated commit changes nothing',
      async (sink, place) => {
        const run = kit.newRun();
        const data = sample(kind);
        await kit.prepare(sink, place.sink, run);
        const writer = await sink.open(place.sink, kit.attemptCtx(run, 0, 'a1'));
        await kit.stageAll(writer, data, 0);
        await kit.assertVisible(place, empty(kind), 'what a reader sees before commit');
        await writer.commit();
        await kit.assertVisible(place, data, 'what a reader sees after commit');
        await writer.commit();
        await writer.abort(); // after commit: changes nothing either
        await kit.assertVisible(place, data, 'what a reader sees after a second commit and an abort');
      },
    );

    kit.sinkCheck('abort publishes nothing and may be repeated', async (sink, place) => {
      const run = kit.newRun();
      await kit.prepare(sink, place.sink, run);
      const writer = await sink.open(place.sink, kit.attemptCtx(run, 0, 'a1'));
      await kit.stageAll(writer, sample(kind), 0);
      await writer.abort();
      await writer.abort();
      await kit.assertVisible(place, empty(kind), 'what a reader sees after abort');
    });

    kit.sinkCheck('abort and commit leave no staging behind in the store', async (sink, place, t) => {
      if (harness.limits.leftovers !== undefined) return t.skip(harness.limits.leftovers);
      const run = kit.newRun();
      await kit.prepare(sink, place.sink, run);
      const aborted = await sink.open(place.sink, kit.attemptCtx(run, 0, 'a1'));
      await kit.stageAll(aborted, sample(kind), 0);
      // A files sink stages in the store, so the check can see it looks in the right place; a table
      // sink stages in a transaction no one else sees.
      if (kind === 'files')
        assert.notDeepEqual(await place.leftovers(), [], 'staging shows while an attempt is open');
      await aborted.abort();
      assert.deepEqual(await place.leftovers(), [], 'after abort');
      const committed = await sink.open(place.sink, kit.attemptCtx(run, 0, 'a2'));
      await kit.stageAll(committed, sample(kind), 0);
      await committed.commit();
      assert.deepEqual(await place.leftovers(), [], 'after commit');
    });

    kit.sinkCheck(
      'an aborted attempt refuses to stage or commit (conflict), destroying the stream',
      async (sink, place) => {
        const run = kit.newRun();
        await kit.prepare(sink, place.sink, run);
        const writer = await sink.open(place.sink, kit.attemptCtx(run, 0, 'a1'));
        await kit.stageAll(writer, attemptOutput(kind, 1), 0);
        await writer.abort();
        const [late] = stagings(attemptOutput(kind, 1), 0);
        assert.ok(late);
        const stream = streamOf(late.data);
        const staging = writer.stage({
          name: late.name,
          stream,
          ...(late.columns ? { columns: late.columns } : {}),
        });
        // The attempt is over: a state that forbids the change, not a failure worth retrying.
        const refusal = { code: 'conflict', retryable: false } as const;
        kit.assertFailure(await rejection(staging), refusal, place.sink, [], place.secrets);
        assert.ok(stream.destroyed, 'the refused stream is destroyed');
        kit.assertFailure(await rejection(writer.commit()), refusal, place.sink, [], place.secrets);
        await kit.assertVisible(place, empty(kind), 'what a reader sees after a commit following abort');
      },
    );

    kit.sinkCheck(
      "a second committed attempt of a task replaces the first one's output",
      async (sink, place) => {
        const run = kit.newRun();
        await kit.prepare(sink, place.sink, run);
        const first = await sink.open(place.sink, kit.attemptCtx(run, 3, 'a1'));
        await kit.stageAll(first, attemptOutput(kind, 1), 3);
        await first.commit();
        await kit.assertVisible(place, attemptOutput(kind, 1), 'after the first attempt');
        const second = await sink.open(place.sink, kit.attemptCtx(run, 3, 'a2'));
        await kit.stageAll(second, attemptOutput(kind, 2), 3);
        await kit.assertVisible(place, attemptOutput(kind, 1), 'before the second attempt commits');
        await second.commit();
        await kit.assertVisible(place, attemptOutput(kind, 2), 'exactly one copy after the second attempt');
      },
    );

    kit.sinkCheck('a retry started while a stale attempt still runs adds no copy', async (sink, place) => {
      const run = kit.newRun();
      const data = attemptOutput(kind, 2);
      await kit.prepare(sink, place.sink, run);
      // The stale attempt: lost by the service while it still runs on a node cut off from it.
      const stale = await sink.open(place.sink, kit.attemptCtx(run, 1, 'a1'));
      await kit.stageAll(stale, data, 1);
      // The retry starts before the stale attempt ends. A table sink's open may wait for it (its
      // ledger claim), so the stale attempt commits first, with the retry under way.
      const opening = sink.open(place.sink, kit.attemptCtx(run, 1, 'a2'));
      opening.catch(() => {}); // awaited below; this only keeps an early failure from going unheard
      await stale.commit();
      const fresh = await opening;
      // The retry may be refused (its staging cleared by the commit), may publish the same output
      // again, or may find the task done and load nothing; it never adds a copy.
      const late = await (async () => {
        await kit.stageAll(fresh, data, 1);
        await fresh.commit();
      })().then(
        () => undefined,
        (err: unknown) => err,
      );
      if (late !== undefined) {
        assert.ok(late instanceof FerryError, `the retry: ${inspect(late)}`);
        await fresh.abort();
      }
      await kit.assertVisible(place, data, 'exactly one copy');
    });

    kit.sinkCheck(
      'a failing source fails the stage with its own error and publishes nothing',
      async (sink, place) => {
        const run = kit.newRun();
        await kit.prepare(sink, place.sink, run);
        const writer = await sink.open(place.sink, kit.attemptCtx(run, 0, 'a1'));
        const [s] = stagings(attemptOutput(kind, 1), 0);
        assert.ok(s);
        const source = new Readable({ read() {} });
        source.push(s.data);
        const staging = writer.stage({
          name: s.name,
          stream: source,
          ...(s.columns ? { columns: s.columns } : {}),
        });
        // Before the sink may even have started reading it.
        const broke = new FerryError('store_error', 'the source broke');
        source.destroy(broke);
        // The source's code and words, so the task outcome says what failed: the source.
        const err = await rejection(staging);
        assert.ok(err instanceof FerryError, `expected the source's error, got ${inspect(err)}`);
        assert.equal(err.code, broke.code, err.message);
        assert.ok(err.message.includes(broke.message), `the source's message: ${err.message}`);
        await writer.abort();
        await kit.assertVisible(place, empty(kind), 'after the failed stage and abort');
      },
    );

    kit.sinkCheck(
      'refuses object names that escape the sink, and destroys their streams',
      async (sink, place, t) => {
        if (kind === 'table') {
          return t.skip('a table sink takes no object names: a partition name only labels its ledger row');
        }
        const writer = await sink.open(place.sink, kit.attemptCtx(kit.newRun(), 0, 'a1'));
        for (const name of ['../escape.txt', 'a/../../escape.txt', '/etc/passwd', '.ferry-staging/t0.a9/x']) {
          const stream = streamOf(Buffer.from('x'));
          const err = await rejection(writer.stage({ name, stream }));
          kit.assertFailure(err, { code: 'forbidden', retryable: false }, place.sink, [], place.secrets);
          assert.ok(stream.destroyed, `the stream of ${name} is destroyed`);
        }
        await writer.commit();
        await kit.assertVisible(place, empty(kind), 'after refused names');
      },
    );
  });
}

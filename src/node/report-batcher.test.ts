/**
 * The node's report batches (report-batcher.ts), over a channel the test answers by hand: what goes
 * in which batch, and how each report settles. The real service's side is run by every cluster test
 * (all of a node's reports go this way) and counted in test/reports.batched.test.ts.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { FerryError, toProblem } from '../common/errors.ts';
import { MAX_REPORTS, type ReportResultT, type ReportT } from '../protocol/agent.ts';
import { MAX_BATCH_BYTES, ReportBatcher, type ReportChannel } from './report-batcher.ts';

/** A channel whose batches wait until the test answers them. */
class HandChannel implements ReportChannel {
  readonly batches: { reports: ReportT[]; answer: (r: ReportResultT[] | Error) => void }[] = [];
  readonly singles: ReportT[] = [];
  #arrived: (() => void) | undefined;

  batch(reports: ReportT[]): Promise<ReportResultT[]> {
    return new Promise((resolve, reject) => {
      this.batches.push({
        reports,
        answer: (r) => (r instanceof Error ? reject(r) : resolve(r)),
      });
      this.#arrived?.();
    });
  }

  async single(report: ReportT): Promise<void> {
    this.singles.push(report);
    if (report.attemptId === 'gone') throw new FerryError('lease_lost', 'attempt gone is lost');
  }

  /** Resolves once `n` batches have been sent. */
  async sent(n: number): Promise<void> {
    while (this.batches.length < n) await new Promise<void>((resolve) => (this.#arrived = resolve));
  }
}

const progress = (attemptId: string, rows = 0): ReportT => ({ attemptId, progress: { rows, bytes: 0 } });
const done = (attemptId: string): ReportT => ({
  attemptId,
  complete: { outcome: 'succeeded', result: { kind: 'finalize' } },
});
const ok: ReportResultT = { ok: true };
const settled = (p: Promise<void>): Promise<'taken' | FerryError> =>
  p.then(
    () => 'taken' as const,
    (err: unknown) => err as FerryError,
  );

describe('report batches', () => {
  it('sends a lone report at once, and what comes meanwhile together, in order, in the next', async () => {
    const channel = new HandChannel();
    const batcher = new ReportBatcher(channel);
    const first = settled(batcher.submit(progress('a1')));
    await channel.sent(1);
    assert.deepEqual(channel.batches[0]!.reports, [progress('a1')]);
    // While the first is on its way, three more reports wait for it.
    const later = [batcher.submit(progress('a2', 5)), batcher.submit(done('a2')), batcher.submit(done('a3'))];
    await new Promise((resolve) => setImmediate(resolve));
    assert.equal(channel.batches.length, 1, 'nothing else goes while a batch is on its way');
    channel.batches[0]!.answer([ok]);
    assert.equal(await first, 'taken');
    await channel.sent(2);
    assert.deepEqual(channel.batches[1]!.reports, [progress('a2', 5), done('a2'), done('a3')]);
    channel.batches[1]!.answer([ok, ok, ok]);
    await Promise.all(later);
  });

  it('settles each report on its own: a refused one fails with its error, the others are taken', async () => {
    const channel = new HandChannel();
    const batcher = new ReportBatcher(channel);
    void batcher.submit(progress('warm'));
    await channel.sent(1);
    const reports = [
      settled(batcher.submit(progress('a1'))),
      settled(batcher.submit(progress('lost'))),
      settled(batcher.submit(done('a3'))),
    ];
    channel.batches[0]!.answer([ok]);
    await channel.sent(2);
    const refusal = new FerryError('lease_lost', 'attempt lost is lost: the node went offline');
    channel.batches[1]!.answer([ok, { ok: false, error: toProblem(refusal) }, ok]);
    const [a1, lost, a3] = await Promise.all(reports);
    assert.equal(a1, 'taken');
    assert.equal(a3, 'taken');
    assert.ok(lost instanceof FerryError);
    assert.equal(lost.code, 'lease_lost');
    assert.equal(lost.message, refusal.message);
    assert.equal(lost.retryable, false);
  });

  it('fails every report of a batch that does not arrive, and sends the next ones still', async () => {
    const channel = new HandChannel();
    const batcher = new ReportBatcher(channel);
    const a = settled(batcher.submit(progress('a1')));
    await channel.sent(1);
    const b = settled(batcher.submit(progress('a2')));
    channel.batches[0]!.answer(new FerryError('unavailable', 'service http://127.0.0.1:1: ECONNREFUSED'));
    const failed = await a;
    assert.ok(failed instanceof FerryError && failed.code === 'unavailable' && failed.retryable);
    await channel.sent(2);
    channel.batches[1]!.answer([ok]);
    assert.equal(await b, 'taken');

    // A service that answers the wrong number of results loses nothing silently: all fail, retryably.
    const c = settled(batcher.submit(progress('a3')));
    await channel.sent(3);
    channel.batches[2]!.answer([]);
    const wrong = await c;
    assert.ok(wrong instanceof FerryError);
    assert.equal(wrong.code, 'unavailable');
    assert.match(wrong.message, /answered 0 results to 1 reports/);
  });

  it(`splits more than ${MAX_REPORTS} waiting reports into batches of at most that many`, async () => {
    const channel = new HandChannel();
    const batcher = new ReportBatcher(channel);
    void batcher.submit(progress('warm'));
    await channel.sent(1);
    const many = Array.from({ length: MAX_REPORTS + 3 }, (_, i) => batcher.submit(progress(`a${i}`)));
    channel.batches[0]!.answer([ok]);
    await channel.sent(2);
    assert.equal(channel.batches[1]!.reports.length, MAX_REPORTS);
    channel.batches[1]!.answer(Array.from({ length: MAX_REPORTS }, () => ok));
    await channel.sent(3);
    assert.deepEqual(
      channel.batches[2]!.reports.map((r) => r.attemptId),
      [`a${MAX_REPORTS}`, `a${MAX_REPORTS + 1}`, `a${MAX_REPORTS + 2}`],
    );
    channel.batches[2]!.answer([ok, ok, ok]);
    await Promise.all(many);
  });

  it(`keeps a batch under ${MAX_BATCH_BYTES / 1024 / 1024} MiB of JSON, and sends a larger report alone`, async () => {
    const channel = new HandChannel();
    const batcher = new ReportBatcher(channel);
    void batcher.submit(progress('warm'));
    await channel.sent(1);
    // An outcome of a task with many files is large; here a failure with a long message stands in.
    const large = (attemptId: string, bytes: number): ReportT => ({
      attemptId,
      complete: {
        outcome: 'failed',
        error: { code: 'store_error', message: 'x'.repeat(bytes), retryable: true },
      },
    });
    const reports = [
      batcher.submit(large('a1', MAX_BATCH_BYTES / 2)),
      batcher.submit(large('a2', MAX_BATCH_BYTES / 3)),
      batcher.submit(large('a3', MAX_BATCH_BYTES / 3)),
      batcher.submit(large('a4', MAX_BATCH_BYTES * 2)),
      batcher.submit(progress('a5')),
    ];
    channel.batches[0]!.answer([ok]);
    const ids = async (n: number): Promise<string[]> => {
      await channel.sent(n);
      const { reports: sent, answer } = channel.batches[n - 1]!;
      answer(sent.map(() => ok));
      return sent.map((r) => r.attemptId);
    };
    assert.deepEqual(await ids(2), ['a1', 'a2']);
    assert.deepEqual(await ids(3), ['a3']);
    assert.deepEqual(await ids(4), ['a4']);
    assert.deepEqual(await ids(5), ['a5']);
    await Promise.all(reports);
  });

  it('falls back to one call per report, for good, when the service has no batch route', async () => {
    const channel = new HandChannel();
    const batcher = new ReportBatcher(channel);
    const a = settled(batcher.submit(progress('a1')));
    await channel.sent(1);
    channel.batches[0]!.answer(new FerryError('not_found', 'no route POST /api/v1/agent/reports'));
    assert.equal(await a, 'taken');
    const gone = await settled(batcher.submit(progress('gone')));
    assert.ok(gone instanceof FerryError && gone.code === 'lease_lost');
    assert.deepEqual(
      channel.singles.map((r) => r.attemptId),
      ['a1', 'gone'],
    );
    assert.equal(channel.batches.length, 1, 'no batch is tried again');
  });
});

/**
 * A node's attempt reports to the service (progress, which renews a lease, and outcomes), gathered
 * into batches: while one batch is on its way, the reports made meanwhile wait and go together in
 * the next (at most MAX_REPORTS, and MAX_BATCH_BYTES of JSON). A lone report goes at once, so an
 * idle node waits no longer than before; a busy one sends one request where it sent one per report
 * (a task made three), which was most of the service's per-task cost.
 *
 * Each report settles on its own: taken, or refused with the error its single call would have got
 * (`lease_lost`, `not_found`, ...). A batch that does not arrive fails every report in it with the
 * transport's error, as each single call would have failed; the callers retry as they did.
 *
 * A service that predates batches answers the batch with 404 and no such route: its reports, and
 * every later one, then go one call each.
 */
import { FerryError, fromProblem } from '../common/errors.ts';
import { MAX_REPORTS, type ReportResultT, type ReportT } from '../protocol/agent.ts';

interface Pending {
  report: ReportT;
  /** Its JSON's length: a batch stays far below the service's body limit. */
  size: number;
  resolve: () => void;
  reject: (err: unknown) => void;
}

/**
 * The most JSON one batch carries (one report alone may be larger). An outcome lists its task's
 * outputs, and a task of thousands of files makes one of megabytes.
 */
export const MAX_BATCH_BYTES = 4 * 1024 * 1024;

export interface ReportChannel {
  /** Sends a batch; the results in the same order. */
  batch(reports: ReportT[]): Promise<ReportResultT[]>;
  /** Sends one report the single way (a service without batches). */
  single(report: ReportT): Promise<void>;
}

export class ReportBatcher {
  readonly #channel: ReportChannel;
  #waiting: Pending[] = [];
  #sending = false;
  #batches = true;

  constructor(channel: ReportChannel) {
    this.#channel = channel;
  }

  /** Settles once the service has taken the report, or refused it. */
  submit(report: ReportT): Promise<void> {
    return new Promise<void>((resolve, reject) => {
      this.#waiting.push({ report, size: JSON.stringify(report).length, resolve, reject });
      this.#pump();
    });
  }

  #pump(): void {
    if (this.#sending || this.#waiting.length === 0) return;
    let count = 0;
    let bytes = 0;
    for (const p of this.#waiting) {
      if (count === MAX_REPORTS || (count > 0 && bytes + p.size > MAX_BATCH_BYTES)) break;
      count++;
      bytes += p.size;
    }
    const batch = this.#waiting.splice(0, count);
    this.#sending = true;
    void this.#send(batch).finally(() => {
      this.#sending = false;
      this.#pump();
    });
  }

  async #send(batch: Pending[]): Promise<void> {
    if (!this.#batches) {
      await Promise.all(batch.map((p) => this.#channel.single(p.report).then(p.resolve, p.reject)));
      return;
    }
    let results: ReportResultT[];
    try {
      results = await this.#channel.batch(batch.map((p) => p.report));
    } catch (err) {
      if (err instanceof FerryError && err.code === 'not_found' && err.message.startsWith('no route ')) {
        this.#batches = false;
        return this.#send(batch);
      }
      for (const p of batch) p.reject(err);
      return;
    }
    if (results.length !== batch.length) {
      const err = new FerryError(
        'unavailable',
        `the service answered ${results.length} results to ${batch.length} reports`,
      );
      for (const p of batch) p.reject(err);
      return;
    }
    batch.forEach((p, i) => {
      const result = results[i]!;
      if (result.ok) p.resolve();
      else p.reject(fromProblem(result.error, 500));
    });
  }
}

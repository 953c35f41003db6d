/**
 * A small file a sink publishes whole at commit with one request (Azure: Put Blob; S3: PutObject)
 * instead of staging it now (Put Block, then Put Block List at commit; or create, part, complete):
 * one request where staging takes two or three, which is what limits a store taking many small files.
 */
import { createHash } from 'node:crypto';
import { FerryError } from '../../common/errors.ts';
import type { DirectRead } from '../../tables/object-reads.ts';
import { RANGE_PAIRS, WHOLE_READ_BELOW, readWhole } from './range-pairs.ts';
import type { UploadBudget } from '../../common/upload-budget.ts';

/**
 * Staging only keeps the file open (DirectRead.keep): nothing is read, and nothing of it is held in
 * memory. publish() reads it then, counted, into a pooled buffer, takes its sha256 (what the staged
 * object reports once the commit is over: StagedObject.sha256) and sends those bytes, so the file is
 * read and hashed once, as a file staged at once is. What is published is the file as it is then,
 * provided it has not changed since it was opened (DirectRead.unchanged), which the read checks.
 * A second publish (the commit's put sent again) reads it once more, uncounted, and sends it only if
 * it is still the same bytes.
 */
export class HeldFile {
  readonly size: number;
  /** The sha256 of the bytes published; '' until publish() has read them. */
  sha256 = '';
  readonly #direct: DirectRead;
  readonly #budget: UploadBudget;
  readonly #message: (text: string) => string;
  #let: (() => void) | undefined;

  private constructor(
    direct: DirectRead,
    budget: UploadBudget,
    letGo: () => void,
    message: (text: string) => string,
  ) {
    this.size = direct.size;
    this.#direct = direct;
    this.#budget = budget;
    this.#message = message;
    this.#let = letGo;
  }

  /**
   * Keeps `direct` open, when it is small, its source can keep it and the budget allows one more
   * file held open; undefined otherwise (the caller stages it at once).
   */
  static hold(
    direct: DirectRead,
    budget: UploadBudget,
    message: (text: string) => string,
  ): HeldFile | undefined {
    if (direct.size >= WHOLE_READ_BELOW || !direct.keep || !budget.holdFile()) return undefined;
    return new HeldFile(direct, budget, direct.keep(), message);
  }

  /**
   * Reads the file and hands its bytes to `send` (called again for another request, say after a
   * conflict, with the file read again, and only if it is still the same bytes).
   */
  async publish(signal: AbortSignal, send: (body: Buffer) => Promise<unknown>): Promise<void> {
    if (!this.#let) throw new Error('HeldFile.publish after release');
    const first = this.sha256 === '';
    const pairs = this.#budget.pool(RANGE_PAIRS);
    const pair = await pairs.take(signal);
    try {
      const whole = await readWhole(this.#direct, pair, first ? 'read' : 'reread', this.#message);
      const sha256 = createHash('sha256').update(whole).digest('hex');
      if (first) this.sha256 = sha256;
      else if (sha256 !== this.sha256) {
        throw new FerryError('store_error', this.#message('changed while it was committed'), {
          retryable: true,
        });
      }
      await send(whole);
    } finally {
      pairs.give(pair);
    }
  }

  /** Lets the file go (closed once its source is done with it too). Idempotent. */
  release(): void {
    if (!this.#let) return;
    this.#let();
    this.#let = undefined;
    this.#budget.letFileGo();
  }
}

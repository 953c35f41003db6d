/**
 * The signal of one object's staging in an object store: aborted when the attempt is, or when the
 * stage fails for any reason, so no part keeps uploading. Work outside a request can end the stage (a
 * file read failing under a part being sent): what it was stopped for is then the stage's error, not
 * the aborted requests'.
 */
export class StageSignal {
  readonly signal: AbortSignal;
  readonly #local = new AbortController();
  #stopped: { error: unknown } | undefined;

  constructor(attempt: AbortSignal) {
    this.signal = AbortSignal.any([attempt, this.#local.signal]);
  }

  /** Ends the stage with `error` (the first one given wins). */
  readonly stop = (error: unknown): void => {
    this.#stopped ??= { error };
    this.#local.abort();
  };

  /** Aborts what still uploads; the error the stage failed with: what stopped it, else `err`. */
  fail(err: unknown): unknown {
    this.#local.abort();
    return this.#stopped ? this.#stopped.error : err;
  }
}

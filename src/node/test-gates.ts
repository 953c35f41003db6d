/**
 * Gates for unit tests of concurrent code: a fake async function whose every call waits until the
 * test settles it, so a test steps the code under test call by call instead of sleeping.
 */

export interface Deferred<T> {
  promise: Promise<T>;
  resolve(value: T): void;
  reject(error: unknown): void;
}

export function deferred<T>(): Deferred<T> {
  let resolve!: (value: T) => void;
  let reject!: (error: unknown) => void;
  const promise = new Promise<T>((res, rej) => {
    resolve = res;
    reject = rej;
  });
  return { promise, resolve, reject };
}

/** One call held at a gate: its arguments, and how the test ends it. */
export interface HeldCall<A extends unknown[], R> extends Deferred<R> {
  args: A;
}

export class Gate<A extends unknown[], R> {
  /** Every call so far, in order. */
  readonly calls: HeldCall<A, R>[] = [];
  readonly #unseen: HeldCall<A, R>[] = [];
  readonly #waiting: ((call: HeldCall<A, R>) => void)[] = [];

  /** The fake: each call waits until the test settles it. */
  readonly fn = (...args: A): Promise<R> => {
    const call = { ...deferred<R>(), args };
    this.calls.push(call);
    const waiter = this.#waiting.shift();
    if (waiter) waiter(call);
    else this.#unseen.push(call);
    return call.promise;
  };

  /** The oldest call next() has not returned yet, once it is made. */
  next(): Promise<HeldCall<A, R>> {
    const call = this.#unseen.shift();
    if (call) return Promise.resolve(call);
    return new Promise((resolve) => this.#waiting.push(resolve));
  }
}

/**
 * Retries of a task after a failed or lost attempt. An activity's `retry` (protocol/pipeline.ts)
 * sets them, each setting defaulting on its own; every task of the activity run keeps the settings
 * it was queued with (store/queries/start-run.ts, queue-tasks.ts). What happens after an attempt
 * fails is decided here and written by store/queries/settle-task.ts.
 */
import type { RetryPolicyT } from '../../protocol/pipeline.ts';

export interface RetrySettings {
  /** Attempts per task before it fails. */
  maxAttempts: number;
  /** First wait after a failed attempt, doubled after each one ... */
  backoffMs: number;
  /** ... up to this. */
  maxBackoffMs: number;
}

export const DEFAULT_RETRY: Readonly<RetrySettings> = {
  maxAttempts: 5,
  backoffMs: 1000,
  maxBackoffMs: 30_000,
};

/** An activity's retry settings, its defaults filled in. */
export function retrySettings(retry: RetryPolicyT | undefined): RetrySettings {
  return {
    maxAttempts: retry?.maxAttempts ?? DEFAULT_RETRY.maxAttempts,
    backoffMs: retry?.backoffMs ?? DEFAULT_RETRY.backoffMs,
    maxBackoffMs: retry?.maxBackoffMs ?? DEFAULT_RETRY.maxBackoffMs,
  };
}

/** The wait before the next attempt, after `attempts` attempts (the first retry waits backoffMs). */
export function backoffFor(attempts: number, s: Pick<RetrySettings, 'backoffMs' | 'maxBackoffMs'>): number {
  return Math.min(s.maxBackoffMs, s.backoffMs * 2 ** Math.max(0, attempts - 1));
}

export type AfterFailure =
  /** Queued again, to be claimed from notBefore; `requeuedAt` absent: it keeps its place in the queue. */
  | { retry: true; notBefore: number; requeuedAt?: number }
  /** Failed for good, with the error the operator sees. */
  | { retry: false; error: string };

/**
 * After a failed or lost attempt, the task's `attempts` so far counting it: queue it again while the
 * error is retryable and attempts are left, else fail it. `nodeLost`: the attempt was lost with its
 * node, which is not the task's fault: the task goes straight back to its own place in the queue
 * (claims take the oldest first), ahead of everything queued after it. Any other retry waits its
 * backoff at the back.
 */
export function afterFailure(
  attempts: number,
  s: RetrySettings,
  error: string,
  retryable: boolean,
  now: number,
  nodeLost = false,
): AfterFailure {
  if (retryable && attempts < s.maxAttempts)
    return nodeLost
      ? { retry: true, notBefore: now }
      : { retry: true, notBefore: now + backoffFor(attempts, s), requeuedAt: now };
  // The operator's first question about a failed task: would running it again help?
  return {
    retry: false,
    error: retryable
      ? `${error} (gave up after ${attempts} attempts)`
      : `${error} (not retried: the error would repeat)`,
  };
}

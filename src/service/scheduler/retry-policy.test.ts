/** Retry settings default one by one; a failed attempt requeues with a doubling backoff, or fails and says why. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { afterFailure, backoffFor, DEFAULT_RETRY, retrySettings } from './retry-policy.ts';

test('an activity without retry settings gets 5 attempts, 1 s backoff doubling up to 30 s', () => {
  assert.deepEqual(retrySettings(undefined), { maxAttempts: 5, backoffMs: 1000, maxBackoffMs: 30_000 });
  assert.deepEqual(retrySettings({}), DEFAULT_RETRY);
});

test('each retry setting given replaces its default alone', () => {
  assert.deepEqual(retrySettings({ maxAttempts: 2 }), {
    maxAttempts: 2,
    backoffMs: 1000,
    maxBackoffMs: 30_000,
  });
  assert.deepEqual(retrySettings({ backoffMs: 0, maxBackoffMs: 500 }), {
    maxAttempts: 5,
    backoffMs: 0,
    maxBackoffMs: 500,
  });
});

test('the backoff doubles from backoffMs after each attempt, up to maxBackoffMs', () => {
  const s = { backoffMs: 1000, maxBackoffMs: 5000 };
  assert.deepEqual(
    [0, 1, 2, 3, 4, 5].map((n) => backoffFor(n, s)),
    [1000, 1000, 2000, 4000, 5000, 5000],
  );
});

const S = { maxAttempts: 3, backoffMs: 1000, maxBackoffMs: 30_000 };
const NOW = 1_000_000;

test('a retryable failure with attempts left requeues at the back after its backoff', () => {
  assert.deepEqual(afterFailure(1, S, 'boom', true, NOW), {
    retry: true,
    notBefore: NOW + 1000,
    requeuedAt: NOW,
  });
  assert.deepEqual(afterFailure(2, S, 'boom', true, NOW), {
    retry: true,
    notBefore: NOW + 2000,
    requeuedAt: NOW,
  });
});

test('an attempt lost with its node requeues at once, keeping its place in the queue', () => {
  assert.deepEqual(afterFailure(2, S, 'lost', true, NOW, true), { retry: true, notBefore: NOW });
});

test('no attempts left, or an error that would repeat: the task fails, saying which', () => {
  assert.deepEqual(afterFailure(3, S, 'boom', true, NOW), {
    retry: false,
    error: 'boom (gave up after 3 attempts)',
  });
  assert.deepEqual(afterFailure(3, S, 'lost', true, NOW, true), {
    retry: false,
    error: 'lost (gave up after 3 attempts)',
  });
  assert.deepEqual(afterFailure(1, S, 'no such table', false, NOW), {
    retry: false,
    error: 'no such table (not retried: the error would repeat)',
  });
});

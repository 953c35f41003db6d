/** A succeeded report counts only when its result is of its task's kind and a copy's counts agree. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { verifyResult } from './verification.ts';
import { FerryError } from '../../common/errors.ts';
import type { CopyResultT, TaskResultT } from '../../protocol/task.ts';

function copy(over: Partial<CopyResultT> = {}): CopyResultT {
  return {
    kind: 'copy',
    rowsRead: 10,
    rowsWritten: 10,
    bytesRead: 100,
    bytesWritten: 100,
    outputs: [],
    ...over,
  };
}

test('a copy whose rows and bytes agree is credited with what it wrote', () => {
  assert.deepEqual(verifyResult('copy', copy()), { ok: true, rows: 10, bytes: 100 });
});

test('a copy that lost rows or bytes fails verification, retryably, saying both counts', () => {
  assert.deepEqual(verifyResult('copy', copy({ rowsWritten: 9 })), {
    ok: false,
    error: 'verification failed: read 10 rows / 100 bytes, wrote 9 rows / 100 bytes',
    retryable: true,
  });
  const bytes = verifyResult('copy', copy({ bytesWritten: 99 }));
  assert.equal(bytes.ok, false);
  assert.match(!bytes.ok ? bytes.error : '', /wrote 10 rows \/ 99 bytes/);
});

test('re-encoded rows are compared by rows only', () => {
  assert.deepEqual(verifyResult('copy', copy({ converted: true, bytesWritten: 37 })), {
    ok: true,
    rows: 10,
    bytes: 37,
  });
  assert.equal(verifyResult('copy', copy({ converted: true, rowsWritten: 11 })).ok, false);
});

test('plans and finalizes move nothing and are not counted', () => {
  assert.deepEqual(verifyResult('plan', { kind: 'plan', partitions: [{ kind: 'whole' }] }), {
    ok: true,
    rows: 0,
    bytes: 0,
  });
  assert.deepEqual(verifyResult('finalize', { kind: 'finalize' }), { ok: true, rows: 0, bytes: 0 });
});

test('a result of another kind than its task is refused as a bad request', () => {
  const cases: [string, TaskResultT][] = [
    ['plan', copy()],
    ['copy', { kind: 'plan', partitions: [] }],
    ['finalize', copy()],
  ];
  for (const [task, result] of cases) {
    assert.throws(
      () => verifyResult(task, result),
      (err: unknown) =>
        err instanceof FerryError &&
        err.code === 'bad_request' &&
        err.message === `a ${task} task must return a ${task} result`,
    );
  }
});

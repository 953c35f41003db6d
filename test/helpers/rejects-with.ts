/** Awaits a promise that must fail with a FerryError of `code` (and a message matching `message`). */
import assert from 'node:assert/strict';
import { FerryError } from '../../src/common/errors.ts';

export async function rejectsWith(
  promise: Promise<unknown>,
  code: FerryError['code'],
  message?: RegExp,
): Promise<FerryError> {
  try {
    await promise;
  } catch (err) {
    assert.ok(err instanceof FerryError, `expected a FerryError, got ${String(err)}`);
    assert.equal(err.code, code, err.message);
    if (message) assert.match(err.message, message);
    return err;
  }
  assert.fail(`expected ${code}`);
}

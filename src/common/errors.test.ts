/**
 * The one decision "is this a network error", shared by the service client, the service's own
 * store and every connector: which socket failures count, and how anything thrown becomes a
 * FerryError.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { isConnectionLost, isNetworkError, toFerryError } from './errors.ts';

const sysError = (code: string, message = `connect ${code} 10.0.0.1:5432`): Error =>
  Object.assign(new Error(message), { code });

test('isNetworkError: the socket and DNS codes of Node and undici, nothing else', () => {
  for (const code of ['ECONNREFUSED', 'ECONNRESET', 'ETIMEDOUT', 'ENOTFOUND', 'EAI_AGAIN', 'UND_ERR_SOCKET'])
    assert.equal(isNetworkError(sysError(code)), true, code);
  for (const code of ['ENOENT', 'EACCES', 'ER_NO_SUCH_TABLE', '08006'])
    assert.equal(isNetworkError(sysError(code)), false, code);
  assert.equal(isNetworkError(new Error('connection refused')), false, 'words are not a code');
  assert.equal(isNetworkError({ code: 'ECONNREFUSED' }), false, 'not an Error');
  assert.equal(isNetworkError(undefined), false);
  // Only the error itself: a wrapper's causes are for the caller to walk.
  assert.equal(isNetworkError(new Error('wrapped', { cause: sysError('ECONNREFUSED') })), false);
});

test('isConnectionLost: a connection that was open broke, not one that never opened', () => {
  assert.equal(isConnectionLost(sysError('ECONNRESET')), true);
  assert.equal(isConnectionLost(sysError('EPIPE')), true);
  assert.equal(isConnectionLost(sysError('ECONNREFUSED')), false);
  assert.equal(isConnectionLost(sysError('ENOTFOUND')), false);
});

test('toFerryError: every network error is unavailable, described in words', () => {
  const refused = toFerryError(sysError('ECONNREFUSED'), 'service http://127.0.0.1:1');
  assert.equal(refused.code, 'unavailable');
  assert.equal(refused.message, 'service http://127.0.0.1:1: connection refused');
  assert.equal(toFerryError(sysError('ENOTFOUND', 'getaddrinfo ENOTFOUND nohost')).code, 'unavailable');
  assert.equal(toFerryError(sysError('ENOENT', 'no such file')).code, 'internal');
});

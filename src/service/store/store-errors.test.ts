/** Which failures mean "the service's store is away" (503, retried), whatever shape pg gives them. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import pg from 'pg';
import { storeUnavailable, toServiceError } from './store-errors.ts';
import { FerryError } from '../../common/errors.ts';

function sqlError(code: string, message: string): Error {
  const err = new pg.DatabaseError(message, 0, 'error');
  err.code = code;
  return err;
}

function socketError(code: string): Error {
  return Object.assign(new Error(`connect ${code} 127.0.0.1:5432`), { code });
}

test('a lost or refused store connection is one retryable unavailable error with a clear message', () => {
  const cases: [Error, RegExp][] = [
    [socketError('ECONNREFUSED'), /store is unavailable: connection refused$/],
    [socketError('ECONNRESET'), /connection reset/],
    [socketError('ENETUNREACH'), /unavailable: ENETUNREACH$/],
    [
      sqlError('57P01', 'terminating connection due to administrator command'),
      /administrator command \(57P01\)/,
    ],
    [sqlError('57P03', 'the database system is starting up'), /starting up \(57P03\)/],
    [sqlError('08006', 'connection failure'), /connection failure \(08006\)/],
    [new Error('Connection terminated unexpectedly'), /Connection terminated unexpectedly/],
    [new Error('Client has encountered a connection error and is not queryable'), /not queryable/],
    [new Error('timeout exceeded when trying to connect'), /timeout exceeded/],
  ];
  for (const [err, message] of cases) {
    const fe = storeUnavailable(err);
    assert.ok(fe, err.message);
    assert.equal(fe.code, 'unavailable');
    assert.equal(fe.httpStatus, 503);
    assert.equal(fe.retryable, true);
    assert.match(fe.message, /^the service's store is unavailable: /);
    assert.match(fe.message, message);
    assert.ok(!fe.message.includes('127.0.0.1'), 'no store address in an API answer');
  }
});

test('other errors are not the store being away', () => {
  for (const err of [
    sqlError('23505', 'duplicate key value violates unique constraint'),
    sqlError('42P01', 'relation "tasks" does not exist'),
    sqlError('28P01', 'password authentication failed for user "ferry"'),
    new Error('Connection pool exploded'),
    new FerryError('unavailable', 'service http://x: connection refused'),
    new TypeError('x is undefined'),
  ]) {
    assert.equal(storeUnavailable(err), undefined, err.message);
  }
  assert.equal(toServiceError(sqlError('23505', 'duplicate')).code, 'internal');
  assert.equal(toServiceError(sqlError('57P01', 'terminating')).code, 'unavailable');
});

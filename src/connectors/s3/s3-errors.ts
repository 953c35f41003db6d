/**
 * The one place where S3 failures become FerryErrors. Every message names the linked service, the
 * bucket or object and the operation: `s3 "lake": bucket "nope" does not exist (plan)`. Messages are
 * built from error names and our own words, never from request details, so no credential leaks.
 */
import { FerryError, describeSystemError, isNetworkError } from '../../common/errors.ts';

export function s3Message(linkedService: string, text: string): string {
  return `s3 ${JSON.stringify(linkedService)}: ${text}`;
}

export function cancelledError(linkedService: string, operation: string): FerryError {
  return new FerryError('cancelled', s3Message(linkedService, `cancelled (${operation})`));
}

/** What an operation was about: a bucket, or an object in it. */
export interface S3Target {
  bucket: string;
  key?: string;
}

const AUTH_NAMES = new Set([
  'InvalidAccessKeyId',
  'SignatureDoesNotMatch',
  'AccessDenied',
  'ExpiredToken',
  'InvalidToken',
  'AuthorizationHeaderMalformed',
]);

// Throttling and transient server trouble: the same request can succeed a little later.
const RETRYABLE_NAMES = new Set([
  'SlowDown',
  'InternalError',
  'ServiceUnavailable',
  'RequestTimeout',
  'RequestTimeTooSkewed',
  'ThrottlingException',
]);

interface AwsLikeError extends Error {
  code?: string;
  $metadata?: { httpStatusCode?: number };
}

function describeTarget(target: S3Target): string {
  return target.key === undefined
    ? `bucket ${JSON.stringify(target.bucket)}`
    : `object ${JSON.stringify(target.key)} in bucket ${JSON.stringify(target.bucket)}`;
}

/** Turns anything an S3 call threw into a FerryError naming the store, target and operation. */
export function s3Error(
  err: unknown,
  linkedService: string,
  target: S3Target,
  operation: string,
): FerryError {
  if (err instanceof FerryError) return err;
  const say = (text: string): string => s3Message(linkedService, `${text} (${operation})`);
  if (!(err instanceof Error)) {
    return new FerryError('store_error', say(`${describeTarget(target)}: ${String(err)}`), {
      retryable: false,
    });
  }
  const e = err as AwsLikeError;
  if (e.name === 'AbortError') return cancelledError(linkedService, operation);
  if (isNetworkError(e) || e.name === 'TimeoutError') {
    return new FerryError(
      'store_unreachable',
      say(`cannot reach the store for ${describeTarget(target)}: ${describeSystemError(e)}`),
      {
        cause: err,
        retryable: true,
      },
    );
  }
  const status = e.$metadata?.httpStatusCode;
  if (AUTH_NAMES.has(e.name) || status === 403) {
    return new FerryError(
      'store_auth',
      say(`the store refused the credentials or access to ${describeTarget(target)}: ${e.name}`),
      { cause: err, retryable: false },
    );
  }
  if (e.name === 'NoSuchBucket' || (status === 404 && target.key === undefined)) {
    return new FerryError(
      'store_object_missing',
      say(`bucket ${JSON.stringify(target.bucket)} does not exist`),
      {
        cause: err,
        retryable: false,
      },
    );
  }
  if (e.name === 'NoSuchKey' || e.name === 'NotFound' || status === 404) {
    return new FerryError('store_object_missing', say(`${describeTarget(target)} does not exist`), {
      cause: err,
      retryable: false,
    });
  }
  if (e.name === 'NoSuchUpload') {
    // Our staged upload is gone (aborted by someone else or by a lifecycle rule): a new attempt restages.
    return new FerryError(
      'store_error',
      say(`the multipart upload of ${describeTarget(target)} no longer exists`),
      { cause: err, retryable: true },
    );
  }
  if (RETRYABLE_NAMES.has(e.name) || (status !== undefined && status >= 500)) {
    return new FerryError('store_error', say(`${describeTarget(target)}: ${e.name}: ${e.message}`), {
      cause: err,
      retryable: true,
    });
  }
  return new FerryError('store_error', say(`${describeTarget(target)}: ${e.name}: ${e.message}`), {
    cause: err,
    retryable: false,
  });
}

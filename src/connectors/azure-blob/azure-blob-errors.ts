/**
 * The one place where Azure Blob failures become FerryErrors. Every message names the linked service,
 * the container or blob and the operation: `azure-blob "lake": container "nope" does not exist (plan)`.
 * Messages never carry credentials: the SDK's own text is only used for errors we do not recognise,
 * and then with query strings (SAS tokens) and account keys cut out.
 */
import { FerryError, describeSystemError, isNetworkError } from '../../common/errors.ts';

export function azureBlobMessage(linkedService: string, text: string): string {
  return `azure-blob ${JSON.stringify(linkedService)}: ${text}`;
}

export function cancelledError(linkedService: string, operation: string): FerryError {
  return new FerryError('cancelled', azureBlobMessage(linkedService, `cancelled (${operation})`));
}

/** What a failed request was about. */
export interface BlobTarget {
  linkedService: string;
  container: string;
  /** Full blob name, when the request was about one blob. */
  blob?: string;
}

/** The SDK's own code for a request that never got an answer (its cause, if any, says why). */
const REQUEST_SEND_ERROR = 'REQUEST_SEND_ERROR';

const AUTH_CODES = new Set([
  'AuthenticationFailed',
  'AuthorizationFailure',
  'AuthorizationPermissionMismatch',
  'AuthorizationResourceTypeMismatch',
  'AuthorizationServiceMismatch',
  'AuthorizationSourceIPMismatch',
  'AuthorizationProtocolMismatch',
  'InsufficientAccountPermissions',
  'InvalidAuthenticationInfo',
]);

/** Turns anything an Azure SDK call threw into a FerryError naming the store, object and operation. */
export function azureBlobError(err: unknown, target: BlobTarget, operation: string): FerryError {
  if (err instanceof FerryError) return err;
  const ls = target.linkedService;
  if (err instanceof Error && err.name === 'AbortError') return cancelledError(ls, operation);
  const container = `container ${JSON.stringify(target.container)}`;
  const what = target.blob === undefined ? container : `blob ${JSON.stringify(target.blob)} in ${container}`;
  const status = statusOf(err);
  const code = errorCodeOf(err);
  const message = (code: FerryError['code'], text: string, retryable: boolean): FerryError =>
    new FerryError(code, azureBlobMessage(ls, `${text} (${operation})`), { cause: err, retryable });

  const network = networkCodeOf(err);
  if (network !== undefined && status === undefined) {
    return message('store_unreachable', `cannot reach the service for ${what}: ${network}`, true);
  }
  if (code === 'ContainerNotFound')
    return message('store_object_missing', `${container} does not exist`, false);
  if (code === 'BlobNotFound') return message('store_object_missing', `${what} does not exist`, false);
  if (code === 'InvalidBlockList') {
    // Committing a block list discards the blob's other uncommitted blocks: those of any other attempt
    // staging the same blob. As with the filesystem sink, the attempt that committed first wins.
    return message(
      'conflict',
      `the staged blocks of ${what} were discarded: another attempt committed the blob first`,
      false,
    );
  }
  if (status === 401 || status === 403 || (code !== undefined && AUTH_CODES.has(code))) {
    return message(
      'store_auth',
      `the credentials were refused for ${what}${code ? ` (${code})` : ''}`,
      false,
    );
  }
  if (status === 404) return message('store_object_missing', `${what} does not exist`, false);
  if (status === 408 || status === 429 || (status !== undefined && status >= 500)) {
    return message(
      'store_error',
      `the service failed on ${what}: HTTP ${status}${code ? ` ${code}` : ''}`,
      true,
    );
  }
  const detail =
    status === undefined ? redact(err instanceof Error ? err.message : String(err)) : `HTTP ${status}`;
  return message('store_error', `${what}: ${detail}${code ? ` (${code})` : ''}`, false);
}

/** A conditional request refused because the blob changed (HTTP 412 ConditionNotMet). */
export function isConditionNotMet(err: unknown): boolean {
  return statusOf(err) === 412 && errorCodeOf(err) === 'ConditionNotMet';
}

/**
 * A request the service refused to credentials it accepted: a SAS token or role without the
 * permission (AuthorizationPermissionMismatch). Not AuthorizationFailure, which the service (and
 * Azurite, for a wrong key) also answers when the credentials themselves are refused.
 */
export function isPermissionRefused(err: unknown): boolean {
  const code = errorCodeOf(err instanceof FerryError ? err.cause : err);
  return code !== undefined && PERMISSION_CODES.has(code);
}

const PERMISSION_CODES = new Set([
  'AuthorizationPermissionMismatch',
  'AuthorizationResourceTypeMismatch',
  'InsufficientAccountPermissions',
]);

export function isNotFound(err: unknown): boolean {
  return statusOf(err) === 404;
}

/** A blob put on condition that it had not changed since the attempt began, when another attempt had committed it. */
export function overtakenError(target: BlobTarget, operation: string): FerryError {
  return new FerryError(
    'conflict',
    azureBlobMessage(
      target.linkedService,
      `blob ${JSON.stringify(target.blob)} in container ${JSON.stringify(target.container)} changed after this attempt began: another attempt committed the blob first (${operation})`,
    ),
    { retryable: false },
  );
}

function statusOf(err: unknown): number | undefined {
  const status = (err as { statusCode?: unknown } | undefined)?.statusCode;
  return typeof status === 'number' ? status : undefined;
}

/** The storage error code, from the `x-ms-error-code` header or the error body. */
function errorCodeOf(err: unknown): string | undefined {
  const e = err as { code?: unknown; details?: { errorCode?: unknown } } | undefined;
  const fromDetails = e?.details?.errorCode;
  if (typeof fromDetails === 'string') return fromDetails;
  return typeof e?.code === 'string' && !isNetworkError(err) && e.code !== REQUEST_SEND_ERROR
    ? e.code
    : undefined;
}

/** A socket-level failure, looked for along the cause chain, described like `connection refused`. */
function networkCodeOf(err: unknown): string | undefined {
  let found: string | undefined;
  for (let e = err, depth = 0; e instanceof Error && depth < 5; e = e.cause, depth++) {
    if (isNetworkError(e)) return describeSystemError(e);
    if ((e as NodeJS.ErrnoException).code === REQUEST_SEND_ERROR) found ??= 'request failed';
  }
  return found;
}

function redact(text: string): string {
  return text
    .replace(/(https?:\/\/[^\s?"']*)\?[^\s"']*/g, '$1?<redacted>')
    .replace(/(sig|AccountKey|SharedAccessSignature)=[^&;\s"']*/gi, '$1=<redacted>');
}

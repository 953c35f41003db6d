/**
 * The one place where file system failures become FerryErrors. Every message names the linked
 * service, the path and the operation: `filesystem "in": /data/in/a.csv does not exist (read)`.
 */
import { FerryError, type ErrorCode } from '../../common/errors.ts';

export function filesystemMessage(linkedService: string, text: string): string {
  return `filesystem ${JSON.stringify(linkedService)}: ${text}`;
}

export function cancelledError(linkedService: string, operation: string): FerryError {
  return new FerryError('cancelled', filesystemMessage(linkedService, `cancelled (${operation})`));
}

interface Mapping {
  code: ErrorCode;
  retryable: boolean;
  describe: (target: string) => string;
}

const BY_ERRNO: Record<string, Mapping> = {
  ENOENT: { code: 'store_object_missing', retryable: false, describe: (t) => `${t} does not exist` },
  ENOTDIR: { code: 'store_object_missing', retryable: false, describe: (t) => `${t} does not exist` },
  // The node's OS user lacks the right: the nearest thing a file system has to refused credentials.
  EACCES: { code: 'store_auth', retryable: false, describe: (t) => `permission denied on ${t}` },
  EPERM: { code: 'store_auth', retryable: false, describe: (t) => `operation not permitted on ${t}` },
  EROFS: { code: 'store_error', retryable: false, describe: (t) => `${t} is on a read-only file system` },
  ENOSPC: { code: 'store_error', retryable: false, describe: (t) => `no space left on device writing ${t}` },
  EDQUOT: { code: 'store_error', retryable: false, describe: (t) => `disk quota exceeded writing ${t}` },
  EISDIR: { code: 'store_error', retryable: false, describe: (t) => `${t} is a folder` },
  ENOTEMPTY: { code: 'store_error', retryable: false, describe: (t) => `${t} is a folder that is not empty` },
  ELOOP: { code: 'store_error', retryable: false, describe: (t) => `too many symbolic links at ${t}` },
  // Transient pressure on this node: another attempt (maybe elsewhere) can succeed.
  EMFILE: { code: 'store_error', retryable: true, describe: (t) => `too many open files opening ${t}` },
  ENFILE: { code: 'store_error', retryable: true, describe: (t) => `too many open files opening ${t}` },
  EBUSY: { code: 'store_error', retryable: true, describe: (t) => `${t} is busy` },
  EAGAIN: { code: 'store_error', retryable: true, describe: (t) => `${t} is temporarily unavailable` },
  EIO: { code: 'store_error', retryable: true, describe: (t) => `I/O error on ${t}` },
  ESTALE: { code: 'store_error', retryable: true, describe: (t) => `stale file handle on ${t}` },
};

/** Turns anything a file system call threw into a FerryError naming the store, path and operation. */
export function filesystemError(
  err: unknown,
  linkedService: string,
  target: string,
  operation: string,
): FerryError {
  if (err instanceof FerryError) return err;
  if (err instanceof Error && err.name === 'AbortError') return cancelledError(linkedService, operation);
  const errno = err instanceof Error ? (err as NodeJS.ErrnoException).code : undefined;
  const mapping = errno === undefined ? undefined : BY_ERRNO[errno];
  if (mapping) {
    return new FerryError(
      mapping.code,
      filesystemMessage(linkedService, `${mapping.describe(target)} (${operation})`),
      {
        cause: err,
        retryable: mapping.retryable,
      },
    );
  }
  const detail = err instanceof Error ? err.message : String(err);
  return new FerryError(
    'store_error',
    filesystemMessage(linkedService, `${target}: ${detail} (${operation})`),
    {
      cause: err,
      retryable: false,
    },
  );
}

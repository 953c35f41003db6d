/**
 * What an attempt's succeeded report is worth (store/queries/attempt-reports.ts writes the outcome).
 * A result must be of its task's kind: a node answering a plan with a copy is broken, and the report
 * is refused. A copy is verified: the rows read and written must match, and the bytes too unless
 * the rows were re-encoded on the way (JSON lines, Parquet and gzip differ in bytes by design). A
 * copy that fails verification is a failed attempt, retried like any other: the next may read a
 * source that holds still.
 */
import type { TaskResultT } from '../../protocol/task.ts';
import { FerryError } from '../../common/errors.ts';

/** Taken: the rows and bytes the task is credited with (a plan or a finalize moves none); or failed. */
export type Verdict =
  { ok: true; rows: number; bytes: number } | { ok: false; error: string; retryable: boolean };

/** Throws a bad_request FerryError when the result is not of the task's kind. */
export function verifyResult(taskKind: string, result: TaskResultT): Verdict {
  if (taskKind === 'plan' && result.kind !== 'plan')
    throw new FerryError('bad_request', 'a plan task must return a plan result');
  if (taskKind === 'copy' && result.kind !== 'copy')
    throw new FerryError('bad_request', 'a copy task must return a copy result');
  if (taskKind === 'finalize' && result.kind !== 'finalize')
    throw new FerryError('bad_request', 'a finalize task must return a finalize result');
  if (result.kind !== 'copy') return { ok: true, rows: 0, bytes: 0 };
  const bytesDiffer = result.converted !== true && result.bytesRead !== result.bytesWritten;
  if (bytesDiffer || result.rowsRead !== result.rowsWritten)
    return {
      ok: false,
      error: `verification failed: read ${result.rowsRead} rows / ${result.bytesRead} bytes, wrote ${result.rowsWritten} rows / ${result.bytesWritten} bytes`,
      retryable: true,
    };
  return { ok: true, rows: result.rowsWritten, bytes: result.bytesWritten };
}

/**
 * The filesystem store's connection test, on the linked service's root (options are ignored).
 * Read: the root lies inside the --allow-path roots (resolveRoot, whose refusal names the flag), is
 * a folder, and lists. Write: a probe file `<root>/.ferry-staging/<probe>` (the staging folder no
 * source lists) is written, its size read back, and removed, with the staging folder when no sink
 * stages there. File modes do not stop root, so a node running as root passes where its folder is
 * read-only to others.
 */
import { mkdir, readdir, rm, rmdir, stat, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { FerryError } from '../../common/errors.ts';
import type { ResolvedEndpointT } from '../../protocol/task.ts';
import {
  PROBE_BYTES,
  TEST_CLEANUP,
  TEST_READ,
  TEST_WRITE,
  checkProbeName,
  counted,
  withHint,
  writeRefused,
  type CheckHints,
} from '../connection-check.ts';
import type { ConnectorContext } from '../connector.ts';
import {
  STAGING_FOLDER,
  folderInside,
  realpathInside,
  resolveRoot,
  type FilesystemRoot,
} from './filesystem-config.ts';
import { cancelledError, filesystemError, filesystemMessage } from './filesystem-errors.ts';

/** The errors of a write the file system refused, rather than failed. */
const REFUSED = new Set(['EACCES', 'EPERM', 'EROFS']);
/** Tries of creating the probe, each after a staging folder removed under it by another sink. */
const PROBE_TRIES = 10;

export async function checkFilesystemRead(
  endpoint: ResolvedEndpointT,
  ctx: ConnectorContext,
): Promise<string> {
  const ls = endpoint.linkedService;
  try {
    if (ctx.signal.aborted) throw cancelledError(ls, TEST_READ);
    const root = await resolveRoot(endpoint, ctx.allowedRoots);
    const folder = await folderInside(root, '', TEST_READ);
    let entries: string[];
    try {
      entries = await readdir(folder);
    } catch (err) {
      throw filesystemError(err, ls, folder, TEST_READ);
    }
    if (ctx.signal.aborted) throw cancelledError(ls, TEST_READ);
    const count = entries.filter((e) => e !== STAGING_FOLDER).length;
    return `listed ${folder} (${counted(count, 'entry', 'entries')})`;
  } catch (err) {
    throw withHint(err, hints(endpoint, 'read and enter'));
  }
}

export async function checkFilesystemWrite(
  endpoint: ResolvedEndpointT,
  ctx: ConnectorContext,
  probeName: string,
): Promise<string> {
  const ls = endpoint.linkedService;
  const say = (text: string): string => filesystemMessage(ls, text);
  try {
    checkProbeName(probeName, say);
    if (ctx.signal.aborted) throw cancelledError(ls, TEST_WRITE);
    const root = await resolveRoot(endpoint, ctx.allowedRoots);
    const folder = await folderInside(root, '', TEST_WRITE);
    const staging = path.join(folder, STAGING_FOLDER);
    const probe = path.join(staging, probeName);
    let size: number | undefined;
    let failure: unknown;
    try {
      await writeProbe(root, staging, probe, ctx.signal);
      size = (await stat(probe)).size;
    } catch (err) {
      failure = err;
    }
    // Removed whatever happened, and before any failure is reported: the test leaves nothing behind.
    const leftover = await removeProbe(staging, probe).then(
      () => undefined,
      (err: unknown) => err,
    );
    if (failure !== undefined) {
      const err = filesystemError(failure, ls, probe, TEST_WRITE);
      const errno = failure instanceof FerryError ? undefined : (failure as NodeJS.ErrnoException).code;
      if (errno !== undefined && REFUSED.has(errno)) {
        const readOnly = errno === 'EROFS' ? ', on a file system mounted read-write' : '';
        throw writeRefused(
          err,
          say,
          `the node's user (${nodeUser()}) must be able to create and remove files in ${folder}${readOnly}`,
        );
      }
      throw err;
    }
    if (leftover !== undefined) {
      const err = filesystemError(leftover, ls, probe, TEST_CLEANUP);
      throw new FerryError(err.code, err.message, {
        cause: leftover,
        retryable: false,
        hint: `remove ${probe} by hand, and let the node's user (${nodeUser()}) remove files in ${folder}`,
      });
    }
    if (size !== PROBE_BYTES.length) {
      throw new FerryError(
        'store_error',
        say(`wrote ${PROBE_BYTES.length} bytes to ${probe} but ${size} were stored (${TEST_WRITE})`),
        { retryable: false },
      );
    }
    return `wrote and removed ${STAGING_FOLDER}/${probeName} in ${folder}`;
  } catch (err) {
    throw withHint(err, hints(endpoint, 'create and remove files in'));
  }
}

/**
 * Makes the staging folder if missing and writes the probe in it, once the folder is known to
 * resolve inside the root (a symlink could lead it anywhere). Another sink's commit removes the
 * staging folder once it is empty, which may be between the two: the probe is then tried again.
 */
async function writeProbe(
  root: FilesystemRoot,
  staging: string,
  probe: string,
  signal: AbortSignal,
): Promise<void> {
  for (let tries = 1; ; tries++) {
    try {
      await mkdir(staging);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
    }
    try {
      await realpathInside(root, staging, TEST_WRITE);
      await writeFile(probe, PROBE_BYTES, { signal });
      return;
    } catch (err) {
      const gone =
        err instanceof FerryError
          ? err.code === 'store_object_missing'
          : (err as NodeJS.ErrnoException).code === 'ENOENT';
      if (!gone || tries >= PROBE_TRIES) throw err;
    }
  }
}

/** Removes the probe, then the staging folder unless another sink stages in it. */
async function removeProbe(staging: string, probe: string): Promise<void> {
  await rm(probe, { force: true });
  await rmdir(staging).catch(() => {
    // Not empty (a sink is staging here), or gone: both fine.
  });
}

function nodeUser(): string {
  const uid = process.getuid?.();
  return uid === undefined ? 'the user it runs as' : `uid ${uid}`;
}

function hints(endpoint: ResolvedEndpointT, may: string): CheckHints {
  const root = typeof endpoint.properties['root'] === 'string' ? endpoint.properties['root'] : 'the root';
  return {
    store_object_missing: `the root must be a folder on this node: create ${root}, or correct the linked service's root`,
    store_auth: `let the node's user (${nodeUser()}) ${may} ${root}`,
  };
}

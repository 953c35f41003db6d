/**
 * The filesystem sink: one FilesystemWriter per task attempt.
 *
 * Attempt states: open -> committed | aborted (both final; abort after commit is a no-op, commit
 * after abort is refused). While open, objects are written to `<dest>/.ferry-staging/<task>.<attempt>/`
 * and nothing is visible in `<dest>`. commit() renames each staged file over `<dest>/<name>`; rename
 * replaces a file atomically, so a reader sees the old file or the new one, never a mix, and a second
 * attempt of a task replaces the first attempt's files instead of adding beside them.
 *
 * Committing an attempt deletes the staging folders of the task's other attempts (one killed mid-write,
 * or one still running on a node cut off from the service). Such a stale attempt then fails on its
 * next write or on commit, because the writer never re-creates its own attempt folder; and if it got
 * to commit first, it published the same task's complete output. Attempts never clear each other at
 * open: the service may start a retry before a stale attempt gets round to opening.
 */
import { createHash } from 'node:crypto';
import { mkdir, open, readdir, rename, rm, rmdir, stat, type FileHandle } from 'node:fs/promises';
import path from 'node:path';
import { pipeline } from 'node:stream/promises';
import { releaseChunk } from '../../common/chunk-pool.ts';
import { FerryError } from '../../common/errors.ts';
import type { ResolvedEndpointT } from '../../protocol/task.ts';
import type { AttemptContext, SinkWriter, StageInput, StagedObject } from '../connector.ts';
import {
  STAGING_FOLDER,
  checkObjectName,
  compileFilesystemSink,
  ensureFolderInside,
  realpathInside,
  resolveRoot,
  type FilesystemRoot,
} from './filesystem-config.ts';
import { cancelledError, filesystemError, filesystemMessage } from './filesystem-errors.ts';

// Staging folders are named `<taskId>.<attemptId>`; an attempt id without dots keeps that name
// unambiguous, so clearing task `a`'s attempts (`a.*` with no further dot) never touches task `a.b`.
const TASK_ID = /^[A-Za-z0-9_-][A-Za-z0-9_.-]{0,199}$/;
const ATTEMPT_ID = /^[A-Za-z0-9_-]{1,128}$/;

type WriterState = 'open' | 'committed' | 'aborted';

/** Bytes gathered into one write of a staging file. */
const WRITE_BYTES = 256 * 1024;

export async function openFilesystemWriter(
  sink: ResolvedEndpointT,
  ctx: AttemptContext,
): Promise<FilesystemWriter> {
  const linkedService = sink.linkedService;
  const options = compileFilesystemSink(sink);
  if (!TASK_ID.test(ctx.taskId) || !ATTEMPT_ID.test(ctx.attemptId)) {
    throw new FerryError(
      'bad_request',
      filesystemMessage(
        linkedService,
        `task id ${JSON.stringify(ctx.taskId)} or attempt id ${JSON.stringify(ctx.attemptId)} cannot name a staging folder`,
      ),
    );
  }
  if (ctx.signal.aborted) throw cancelledError(linkedService, 'open');
  const root = await resolveRoot(sink, ctx.allowedRoots);
  const dest = await ensureFolderInside(root, options.path, 'open');
  const stagingRoot = path.join(dest, STAGING_FOLDER);
  const attemptDir = path.join(stagingRoot, `${ctx.taskId}.${ctx.attemptId}`);
  try {
    await makeAttemptDir(stagingRoot, attemptDir);
    await realpathInside(root, attemptDir, 'open');
  } catch (err) {
    throw filesystemError(err, linkedService, attemptDir, 'open');
  }
  return new FilesystemWriter(root, dest, stagingRoot, attemptDir, ctx);
}

export class FilesystemWriter implements SinkWriter {
  readonly #root: FilesystemRoot;
  readonly #dest: string;
  readonly #stagingRoot: string;
  readonly #attemptDir: string;
  readonly #ctx: AttemptContext;
  readonly #staged = new Map<string, StagedObject>();
  #state: WriterState = 'open';
  #gatherBuffer: Buffer | undefined;

  constructor(
    root: FilesystemRoot,
    dest: string,
    stagingRoot: string,
    attemptDir: string,
    ctx: AttemptContext,
  ) {
    this.#root = root;
    this.#dest = dest;
    this.#stagingRoot = stagingRoot;
    this.#attemptDir = attemptDir;
    this.#ctx = ctx;
  }

  async stage({ name, stream }: StageInput): Promise<StagedObject> {
    const ls = this.#root.linkedService;
    // The source may fail while the staging file is being opened, before pipeline() listens; kept
    // by the stream, that failure then rejects pipeline() instead of crashing the process.
    stream.on('error', () => {});
    let normal: string;
    try {
      this.#assertOpen('stage');
      if (this.#ctx.signal.aborted) throw cancelledError(ls, 'stage');
      normal = checkObjectName(ls, name);
    } catch (err) {
      // The stream is ours once handed over: refusing it must not leave its source open.
      stream.destroy();
      throw err;
    }
    const shown = path.join(this.#dest, normal);
    const file = path.join(this.#attemptDir, normal);
    const hash = createHash('sha256');
    let bytes = 0;
    let handle: FileHandle | undefined;
    try {
      await this.#makeStagingParents(normal);
      handle = await open(file, 'w');
      const out = handle;
      await pipeline(
        stream,
        async (source: AsyncIterable<Buffer | string>) => {
          // Small chunks are gathered into writes of up to WRITE_BYTES, in one buffer per attempt
          // reused from write to write: a write is a round trip through libuv's thread pool, and a
          // table source hands over what each socket read brought.
          // Taken for this stage (a stage running beside it makes its own) and given back after.
          const gather = this.#gatherBuffer ?? Buffer.allocUnsafeSlow(WRITE_BYTES);
          this.#gatherBuffer = undefined;
          let held = 0;
          const flush = async (): Promise<void> => {
            if (held > 0) await writeAll(out, gather.subarray(0, held));
            held = 0;
          };
          for await (const chunk of source) {
            const buf = typeof chunk === 'string' ? Buffer.from(chunk) : chunk;
            hash.update(buf);
            bytes += buf.length;
            if (held + buf.length > WRITE_BYTES) await flush();
            if (buf.length >= WRITE_BYTES) {
              await writeAll(out, buf);
            } else {
              held += buf.copy(gather, held);
            }
            // Done with it: a pooled read buffer goes back (src/common/chunk-pool.ts).
            releaseChunk(buf);
          }
          await flush();
          this.#gatherBuffer = gather;
        },
        { signal: this.#ctx.signal },
      );
      // The commit rename is only as durable as the data it publishes.
      await out.sync();
      await out.close();
    } catch (err) {
      // pipeline() destroys the source when it fails; a failure before it started must do the same.
      stream.destroy();
      await handle?.close().catch(() => {});
      await rm(file, { force: true }).catch(() => {});
      throw await this.#failure(err, shown, 'stage');
    }
    const staged: StagedObject = { name: normal, bytes, sha256: hash.digest('hex') };
    this.#staged.set(normal, staged);
    return staged;
  }

  async commit(): Promise<void> {
    if (this.#state === 'committed') return;
    this.#assertOpen('commit');
    if (this.#ctx.signal.aborted) throw cancelledError(this.#root.linkedService, 'commit');
    const parents = new Map<string, string>();
    for (const name of [...this.#staged.keys()].sort()) {
      const target = path.join(this.#dest, name);
      try {
        const parentRel = path.relative(this.#root.root, path.dirname(target));
        let parent = parents.get(parentRel);
        if (parent === undefined) {
          // A sub-folder of the destination may be a symlink: mkdir and rename only where it resolves inside the root.
          parent = await ensureFolderInside(this.#root, parentRel, 'commit');
          parents.set(parentRel, parent);
        }
        await rename(path.join(this.#attemptDir, name), path.join(parent, path.basename(name)));
      } catch (err) {
        throw await this.#failure(err, target, 'commit');
      }
    }
    await Promise.all([...parents.values()].map(syncFolder));
    this.#state = 'committed';
    // Only now, with the task's output published, do other attempts' leftovers go (a lost attempt
    // killed mid-write, or one still running somewhere, whose commit would now only rewrite the same
    // files). Clearing them earlier, at open, let a late-starting stale attempt destroy a live one.
    await removeOtherAttempts(this.#stagingRoot, this.#ctx.taskId, this.#ctx.attemptId).catch(() => {});
    await this.#removeStaging('commit');
  }

  async abort(): Promise<void> {
    if (this.#state === 'committed') return;
    this.#state = 'aborted';
    await this.#removeStaging('abort');
  }

  #assertOpen(operation: string): void {
    if (this.#state !== 'open') {
      throw new FerryError(
        'conflict',
        filesystemMessage(
          this.#root.linkedService,
          `attempt ${this.#ctx.attemptId} is ${this.#state} (${operation})`,
        ),
      );
    }
  }

  /** Creates the name's folders inside the attempt folder one level at a time, never the attempt folder itself. */
  async #makeStagingParents(name: string): Promise<void> {
    const segments = name.split('/').slice(0, -1);
    let dir = this.#attemptDir;
    for (const segment of segments) {
      dir = path.join(dir, segment);
      try {
        await mkdir(dir);
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
      }
    }
  }

  async #failure(err: unknown, target: string, operation: string): Promise<FerryError> {
    const ls = this.#root.linkedService;
    if ((err as NodeJS.ErrnoException | undefined)?.code === 'ENOENT' && !(await exists(this.#attemptDir))) {
      return new FerryError(
        'conflict',
        filesystemMessage(
          ls,
          `staging folder ${this.#attemptDir} was removed: another attempt of task ${this.#ctx.taskId} committed (${operation})`,
        ),
        { cause: err, retryable: false },
      );
    }
    return filesystemError(err, ls, target, operation);
  }

  async #removeStaging(operation: string): Promise<void> {
    try {
      await rm(this.#attemptDir, { recursive: true, force: true });
    } catch (err) {
      throw filesystemError(err, this.#root.linkedService, this.#attemptDir, operation);
    }
    try {
      await rmdir(this.#stagingRoot);
    } catch {
      // Not empty (another task is staging here) or already gone: both fine.
    }
  }
}

/**
 * Makes the staging folder if missing, then the attempt's folder inside it. Another task's commit or
 * abort removes the staging folder once it is empty, which may be between our two mkdirs: then the
 * second fails with ENOENT and both are made again; once our attempt folder is in, it keeps the
 * staging folder. (Node's recursive mkdir is not used: racing such a removal, it fails with ENOTDIR,
 * which cannot be told from a file in the way.)
 */
async function makeAttemptDir(stagingRoot: string, attemptDir: string): Promise<void> {
  for (let tries = 1; ; tries++) {
    try {
      await mkdir(stagingRoot);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
    }
    try {
      await mkdir(attemptDir);
      return;
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code;
      if (code === 'EEXIST') return; // the same attempt delivered again
      if (code !== 'ENOENT' || tries >= 100) throw err;
    }
  }
}

async function removeOtherAttempts(stagingRoot: string, taskId: string, attemptId: string): Promise<void> {
  const prefix = `${taskId}.`;
  const own = `${prefix}${attemptId}`;
  const entries = await readdir(stagingRoot);
  const earlier = entries.filter(
    (e) => e !== own && e.startsWith(prefix) && !e.slice(prefix.length).includes('.'),
  );
  await Promise.all(earlier.map((e) => rm(path.join(stagingRoot, e), { recursive: true, force: true })));
}

async function writeAll(handle: FileHandle, buf: Buffer): Promise<void> {
  let offset = 0;
  while (offset < buf.length) {
    const { bytesWritten } = await handle.write(buf, offset, buf.length - offset);
    offset += bytesWritten;
  }
}

/** Makes the renames durable where the file system allows fsync on a folder; some refuse, which is fine. */
async function syncFolder(dir: string): Promise<void> {
  let handle: FileHandle | undefined;
  try {
    handle = await open(dir, 'r');
    await handle.sync();
  } catch {
    // Best effort by design: the data itself was fsynced when staged.
  } finally {
    await handle?.close().catch(() => {});
  }
}

async function exists(p: string): Promise<boolean> {
  try {
    await stat(p);
    return true;
  } catch {
    return false;
  }
}

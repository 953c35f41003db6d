/**
 * Reads a FilePartition: one SourceObject per file, opened only when the consumer asks for it, so a
 * partition of many files holds one descriptor at a time. Paths are checked again at read time: the
 * plan may be minutes old and a file may have been replaced by a symlink meanwhile. A file that
 * changes while it is read (its size or modification time) fails the read, retryably, however it
 * is read: stream, direct reads or in place.
 */
import { constants, existsSync, type BigIntStats } from 'node:fs';
import { open, type FileHandle } from 'node:fs/promises';
import { Readable } from 'node:stream';
import { FerryError } from '../../common/errors.ts';
import type { PartitionT, ResolvedEndpointT } from '../../protocol/task.ts';
import type { AttemptContext, SourceObject } from '../connector.ts';
import type { DirectRead, FilePeek } from '../../tables/object-reads.ts';
import { onAbort } from '../on-abort.ts';
import {
  compileFilesystemSource,
  folderInside,
  joinInside,
  realpathInside,
  resolveRoot,
  type FilesystemRoot,
} from './filesystem-config.ts';
import { cancelledError, filesystemError, filesystemMessage } from './filesystem-errors.ts';

/** The largest read, and the smallest buffer a read is given. */
const READ_CHUNK = 256 * 1024;
const MIN_READ_CHUNK = 16 * 1024;
/** Whether another process can open this one's descriptors by path (SourceObject.localPath). */
const DESCRIPTORS_BY_PATH = process.platform === 'linux' && existsSync(`/proc/${process.pid}/fd`);

export async function* readFilesystem(
  source: ResolvedEndpointT,
  partition: PartitionT,
  ctx: AttemptContext,
): AsyncGenerator<SourceObject> {
  if (partition.kind !== 'files') {
    throw new FerryError(
      'bad_request',
      filesystemMessage(
        source.linkedService,
        `cannot read a ${partition.kind} partition; a filesystem source plans files`,
      ),
    );
  }
  const options = compileFilesystemSource(source);
  const root = await resolveRoot(source, ctx.allowedRoots);
  const folder = await folderInside(root, options.path, 'read');
  for (const file of partition.files) {
    if (ctx.signal.aborted) throw cancelledError(root.linkedService, 'read');
    yield await openFile(root, folder, file.path, ctx.signal);
  }
}

async function openFile(
  root: FilesystemRoot,
  folder: string,
  name: string,
  signal: AbortSignal,
): Promise<SourceObject> {
  const lexical = joinInside(root, name, folder);
  const real = await realpathInside(root, lexical, 'read');
  let handle: FileHandle;
  try {
    // O_NOFOLLOW: `real` has no symlinks left, so one appearing now is a swap to refuse.
    handle = await open(real, constants.O_RDONLY | constants.O_NOFOLLOW);
  } catch (err) {
    throw filesystemError(err, root.linkedService, lexical, 'read');
  }
  let opened: BigIntStats;
  try {
    opened = await handle.stat({ bigint: true });
    if (!opened.isFile()) {
      throw new FerryError(
        'store_error',
        filesystemMessage(root.linkedService, `${lexical} is not a regular file (read)`),
      );
    }
  } catch (err) {
    await handle.close();
    throw filesystemError(err, root.linkedService, lexical, 'read');
  }
  const size = Number(opened.size);

  // Reads as large as the file, within bounds: a small file is read in one call and travels as one
  // chunk, a large one in READ_CHUNK pieces. Nothing is read until the stream or `direct` asks.
  const chunk = Math.min(READ_CHUNK, Math.max(MIN_READ_CHUNK, size));
  // The consumer sees FerryErrors, not raw errno errors.
  const failed = (err: unknown): Error =>
    signal.aborted
      ? cancelledError(root.linkedService, 'read')
      : filesystemError(err, root.linkedService, lexical, 'read');
  // Set below; destroy() may run before that, when the signal has already aborted.
  let unhook = (): void => {};
  // direct.keep(): the handle outlives the stream until every keeper lets go.
  let keepers = 0;
  let closeLater = false;
  const stream = new Readable({
    highWaterMark: chunk,
    read() {
      const buf = Buffer.allocUnsafeSlow(chunk);
      handle.read(buf, 0, chunk, null).then(
        ({ bytesRead }) => {
          if (bytesRead > 0) {
            this.push(bytesRead === chunk ? buf : buf.subarray(0, bytesRead));
            return;
          }
          // The end, of the file as it was opened: one that changed meanwhile fails (retried).
          direct.unchanged().then(
            () => this.push(null),
            (err: unknown) => this.destroy(err as Error),
          );
        },
        (err: unknown) => this.destroy(failed(err)),
      );
    },
    destroy(err, callback) {
      unhook();
      if (keepers > 0) {
        closeLater = true;
        return callback(err);
      }
      handle.close().then(
        () => callback(err),
        () => callback(err),
      );
    },
  });
  // A failure before the consumer attaches its pipeline must not be an uncaught 'error': the stream
  // keeps it, and pipeline(), finished() or iteration report it to the consumer.
  stream.on('error', () => {});
  unhook = onAbort(signal, () => stream.destroy(cancelledError(root.linkedService, 'read')));
  const readAt = async (into: Buffer, offset: number, length: number, position: number): Promise<number> => {
    if (stream.destroyed && keepers === 0) throw cancelledError(root.linkedService, 'read');
    try {
      return (await handle.read(into, offset, length, position)).bytesRead;
    } catch (err) {
      throw failed(err);
    }
  };
  const direct: DirectRead = {
    size,
    read: readAt,
    reread: readAt,
    async unchanged() {
      let now: BigIntStats;
      try {
        now = await handle.stat({ bigint: true });
      } catch (err) {
        throw failed(err);
      }
      if (now.size !== opened.size || now.mtimeNs !== opened.mtimeNs) {
        const modified = new Date(Number(now.mtimeNs / 1_000_000n)).toISOString();
        const change = `${opened.size} -> ${now.size} bytes, modified ${modified}`;
        throw new FerryError(
          'store_error',
          filesystemMessage(root.linkedService, `${lexical} changed while it was read (${change}) (read)`),
          { retryable: true },
        );
      }
    },
    keep() {
      keepers++;
      let kept = true;
      return () => {
        if (!kept) return;
        kept = false;
        if (--keepers === 0 && closeLater) handle.close().catch(() => {});
      };
    },
  };
  const peek: FilePeek = {
    size,
    async read(position, length) {
      const into = Buffer.alloc(Math.max(0, Math.min(length, size - position)));
      let done = 0;
      while (done < into.length) {
        const n = await readAt(into, done, into.length - done, position + done);
        if (n === 0) break;
        done += n;
      }
      await direct.unchanged(); // the file as opened, or an error
      return into.subarray(0, done);
    },
  };
  return {
    name,
    stream,
    rows: () => undefined,
    direct,
    peek,
    ...(DESCRIPTORS_BY_PATH ? { localPath: `/proc/${process.pid}/fd/${handle.fd}` } : {}),
  };
}

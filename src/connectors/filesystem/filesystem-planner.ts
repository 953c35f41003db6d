/**
 * Plans a filesystem source: lists the files below the source folder (recursively, sorted by path)
 * and groups them into FilePartitions of at most filesPerTask files and bytesPerTask bytes.
 *
 * Listing rules: regular files are taken; a symlink to a regular file is taken under its own name if
 * it resolves inside the root and refused (forbidden) if it leads outside, because silently skipping
 * it would make a copy that looks complete but is not; symlinked folders are not descended (cycles);
 * sockets, FIFOs and devices are skipped; any `.ferry-staging` folder (a sink's unfinished attempts)
 * is skipped.
 */
import type { Dirent } from 'node:fs';
import { readdir, stat } from 'node:fs/promises';
import path from 'node:path';
import picomatch from 'picomatch';
import type { PartitionT, ResolvedEndpointT } from '../../protocol/task.ts';
import type { ConnectorContext } from '../connector.ts';
import {
  STAGING_FOLDER,
  compileFilesystemSource,
  folderInside,
  realpathInside,
  resolveRoot,
  type FilesystemRoot,
} from './filesystem-config.ts';
import { cancelledError, filesystemError } from './filesystem-errors.ts';

export interface ListedFile {
  /** Path relative to the source folder, '/'-separated. */
  path: string;
  size: number;
}

type FilePartitionT = Extract<PartitionT, { kind: 'files' }>;

export async function planFilesystem(
  source: ResolvedEndpointT,
  ctx: ConnectorContext,
): Promise<PartitionT[]> {
  const options = compileFilesystemSource(source);
  const root = await resolveRoot(source, ctx.allowedRoots);
  const folder = await folderInside(root, options.path, 'plan');
  const matches = options.glob === undefined ? undefined : picomatch(options.glob);
  const files = await listFiles(root, folder, ctx.signal);
  const selected = matches ? files.filter((f) => matches(f.path)) : files;
  return groupFiles(selected, options.filesPerTask, options.bytesPerTask);
}

/** Consecutive runs of files, each within both limits; a file larger than bytesPerTask runs alone. */
export function groupFiles(
  files: readonly ListedFile[],
  filesPerTask: number,
  bytesPerTask: number,
): FilePartitionT[] {
  const partitions: FilePartitionT[] = [];
  let current: ListedFile[] = [];
  let bytes = 0;
  for (const file of files) {
    if (current.length > 0 && (current.length >= filesPerTask || bytes + file.size > bytesPerTask)) {
      partitions.push({ kind: 'files', files: current });
      current = [];
      bytes = 0;
    }
    current.push({ path: file.path, size: file.size });
    bytes += file.size;
  }
  if (current.length > 0) partitions.push({ kind: 'files', files: current });
  return partitions;
}

async function listFiles(root: FilesystemRoot, folder: string, signal: AbortSignal): Promise<ListedFile[]> {
  const files: ListedFile[] = [];
  const pending: string[] = [''];
  while (pending.length > 0) {
    if (signal.aborted) throw cancelledError(root.linkedService, 'plan');
    const relDir = pending.pop() ?? '';
    const absDir = path.join(folder, relDir);
    let entries: Dirent[];
    try {
      entries = await readdir(absDir, { withFileTypes: true });
    } catch (err) {
      throw filesystemError(err, root.linkedService, absDir, 'list');
    }
    // Sizes are fetched per folder at once: one stat per file is the slow part of planning.
    const listed = await Promise.all(
      entries.map(async (entry): Promise<ListedFile | undefined> => {
        const rel = relDir === '' ? entry.name : `${relDir}/${entry.name}`;
        const abs = path.join(folder, rel);
        if (entry.isDirectory()) {
          if (entry.name !== STAGING_FOLDER) pending.push(rel);
          return undefined;
        }
        if (entry.isFile()) {
          const size = await sizeOf(root, abs);
          return size === undefined ? undefined : { path: rel, size };
        }
        if (entry.isSymbolicLink()) return followLink(root, rel, abs);
        return undefined;
      }),
    );
    for (const file of listed) if (file) files.push(file);
  }
  // Code unit order, so the plan is the same on every node whatever its locale.
  return files.sort((a, b) => (a.path < b.path ? -1 : a.path > b.path ? 1 : 0));
}

async function followLink(root: FilesystemRoot, rel: string, abs: string): Promise<ListedFile | undefined> {
  let target;
  try {
    target = await stat(abs);
  } catch (err) {
    // A dangling link names nothing to copy.
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw filesystemError(err, root.linkedService, abs, 'list');
  }
  if (!target.isFile()) return undefined;
  await realpathInside(root, abs, 'list');
  return { path: rel, size: target.size };
}

/** undefined when the file vanished between readdir and stat: it is no longer part of the set. */
async function sizeOf(root: FilesystemRoot, abs: string): Promise<number | undefined> {
  try {
    return (await stat(abs)).size;
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw filesystemError(err, root.linkedService, abs, 'list');
  }
}

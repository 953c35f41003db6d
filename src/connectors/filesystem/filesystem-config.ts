/**
 * Linked service properties and activity options for the filesystem store, compiled once, and the
 * path rules that keep a node inside its --allow-path roots.
 *
 * Path safety, in order: the linked service root must lie under an allowed root both as written and
 * after realpath (a symlinked root cannot point elsewhere); every path below the root is joined
 * lexically (a `..` that climbs out is refused before touching the disk) and then realpath-resolved
 * and checked again, so a symlink inside the root cannot lead outside it either.
 */
import { mkdir, realpath, stat } from 'node:fs/promises';
import path from 'node:path';
import { FerryError } from '../../common/errors.ts';
import type { ResolvedEndpointT } from '../../protocol/task.ts';
import {
  FilesystemProperties,
  FilesystemSink,
  FilesystemSource,
  type FilesystemSinkOptions,
  type FilesystemSourceOptions,
} from '../../protocol/stores.ts';
import { validator, type Validator } from '../../protocol/validate.ts';
import { filesystemError, filesystemMessage } from './filesystem-errors.ts';

/** Where a sink stages attempts, inside its destination folder; sources never list it. */
export const STAGING_FOLDER = '.ferry-staging';

export const DEFAULT_FILES_PER_TASK = 64;
export const DEFAULT_BYTES_PER_TASK = 256 * 1024 * 1024;

/** A linked service root, realpath-resolved and known to lie under an allowed root. */
export interface FilesystemRoot {
  linkedService: string;
  root: string;
}

export interface CompiledFilesystemSource {
  /** Folder under the root, as written ('' = the root). */
  path: string;
  glob: string | undefined;
  filesPerTask: number;
  bytesPerTask: number;
}

export interface CompiledFilesystemSink {
  path: string;
}

// Compiled on first use rather than at import time.
let validators:
  | {
      properties: Validator<typeof FilesystemProperties>;
      source: Validator<typeof FilesystemSource>;
      sink: Validator<typeof FilesystemSink>;
    }
  | undefined;

function schemas(): NonNullable<typeof validators> {
  validators ??= {
    properties: validator(FilesystemProperties),
    source: validator(FilesystemSource),
    sink: validator(FilesystemSink),
  };
  return validators;
}

export function compileFilesystemSource(endpoint: ResolvedEndpointT): CompiledFilesystemSource {
  const options: FilesystemSourceOptions = schemas().source.parse(
    { linkedService: endpoint.linkedService, ...endpoint.options },
    `filesystem source "${endpoint.linkedService}"`,
  );
  return {
    path: options.path ?? '',
    glob: options.glob,
    filesPerTask: options.filesPerTask ?? DEFAULT_FILES_PER_TASK,
    bytesPerTask: options.bytesPerTask ?? DEFAULT_BYTES_PER_TASK,
  };
}

export function compileFilesystemSink(endpoint: ResolvedEndpointT): CompiledFilesystemSink {
  const options: FilesystemSinkOptions = schemas().sink.parse(
    { linkedService: endpoint.linkedService, ...endpoint.options },
    `filesystem sink "${endpoint.linkedService}"`,
  );
  return { path: options.path ?? '' };
}

/** Resolves the linked service root and refuses it unless it lies under one of `allowedRoots`. */
export async function resolveRoot(
  endpoint: ResolvedEndpointT,
  allowedRoots: readonly string[],
): Promise<FilesystemRoot> {
  const linkedService = endpoint.linkedService;
  const { root } = schemas().properties.parse(
    endpoint.properties,
    `filesystem linked service "${linkedService}"`,
  );
  const lexical = path.resolve(root);
  const allowedLexical = allowedRoots.map((r) => path.resolve(r));
  const allowedReal = await Promise.all(allowedLexical.map(realpathOrSelf));
  const refuse = (shown: string): FerryError =>
    new FerryError(
      'forbidden',
      filesystemMessage(
        linkedService,
        `${shown} is outside the allowed roots (${allowedLexical.join(', ') || 'none'}) — start the node with --allow-path`,
      ),
      { hint: `start the node with --allow-path ${lexical}` },
    );

  // Checked before touching the root, so a refused path does not reveal whether it exists.
  if (!allowedLexical.some((a) => isWithin(a, lexical)) && !allowedReal.some((a) => isWithin(a, lexical))) {
    throw refuse(lexical);
  }
  let real: string;
  try {
    real = await realpath(lexical);
  } catch (err) {
    throw filesystemError(err, linkedService, `root ${lexical}`, 'resolve root');
  }
  if (!allowedReal.some((a) => isWithin(a, real))) throw refuse(`${lexical} (-> ${real})`);
  return { linkedService, root: real };
}

/**
 * Joins a relative path under `base` (the root, or a folder inside it) without touching the disk;
 * refuses absolute paths and `..` that climb out of `base`. The result may still hold symlinks: pass
 * it to `realpathInside` before use.
 */
export function joinInside(root: FilesystemRoot, relative: string, base: string = root.root): string {
  if (relative.includes('\0')) {
    throw new FerryError(
      'bad_request',
      filesystemMessage(root.linkedService, `path ${JSON.stringify(relative)} holds a NUL byte`),
    );
  }
  if (path.isAbsolute(relative)) {
    throw new FerryError(
      'forbidden',
      filesystemMessage(root.linkedService, `${relative} is absolute; paths are relative to ${base}`),
    );
  }
  const joined = path.resolve(base, relative);
  if (!isWithin(base, joined) || !isWithin(root.root, joined)) {
    throw new FerryError('forbidden', filesystemMessage(root.linkedService, `${relative} escapes ${base}`));
  }
  return joined;
}

/** realpath() of an existing path, refused if a symlink leads it outside the root. */
export async function realpathInside(
  root: FilesystemRoot,
  absolute: string,
  operation: string,
): Promise<string> {
  let real: string;
  try {
    real = await realpath(absolute);
  } catch (err) {
    throw filesystemError(err, root.linkedService, absolute, operation);
  }
  if (!isWithin(root.root, real)) {
    throw new FerryError(
      'forbidden',
      filesystemMessage(
        root.linkedService,
        `${absolute} resolves to ${real}, outside the root ${root.root} (${operation})`,
      ),
    );
  }
  return real;
}

/** An existing folder under the root, realpath-resolved. */
export async function folderInside(
  root: FilesystemRoot,
  relative: string,
  operation: string,
): Promise<string> {
  const lexical = joinInside(root, relative);
  const real = await realpathInside(root, lexical, operation);
  await assertFolder(root, lexical, real, operation);
  return real;
}

/** A folder under the root, created with its parents if missing, realpath-resolved. */
export async function ensureFolderInside(
  root: FilesystemRoot,
  relative: string,
  operation: string,
): Promise<string> {
  const lexical = joinInside(root, relative);
  // Check the deepest existing ancestor first, so mkdir never follows a symlink out of the root.
  let existing = lexical;
  for (;;) {
    try {
      await realpathInside(root, existing, operation);
      break;
    } catch (err) {
      if (!(err instanceof FerryError) || err.code !== 'store_object_missing' || existing === root.root)
        throw err;
      existing = path.dirname(existing);
    }
  }
  try {
    await mkdir(lexical, { recursive: true });
  } catch (err) {
    throw filesystemError(err, root.linkedService, lexical, operation);
  }
  const real = await realpathInside(root, lexical, operation);
  await assertFolder(root, lexical, real, operation);
  return real;
}

/**
 * Normalises the relative name of an object a sink publishes (`a//b/./c.csv` -> `a/b/c.csv`) and
 * refuses names that are absolute, climb out of the folder, or reach into the staging folder.
 */
export function checkObjectName(linkedService: string, name: string): string {
  if (name.includes('\0')) {
    throw new FerryError(
      'bad_request',
      filesystemMessage(linkedService, `object name ${JSON.stringify(name)} holds a NUL byte`),
    );
  }
  if (path.posix.isAbsolute(name)) {
    throw new FerryError('forbidden', filesystemMessage(linkedService, `object name ${name} is absolute`));
  }
  const normal = path.posix.normalize(name);
  if (normal === '..' || normal.startsWith('../')) {
    throw new FerryError(
      'forbidden',
      filesystemMessage(linkedService, `object name ${name} escapes the sink folder`),
    );
  }
  if (normal === '.' || normal === '' || normal.endsWith('/')) {
    throw new FerryError(
      'bad_request',
      filesystemMessage(linkedService, `object name ${JSON.stringify(name)} does not name a file`),
    );
  }
  if (normal.split('/')[0] === STAGING_FOLDER) {
    throw new FerryError(
      'forbidden',
      filesystemMessage(linkedService, `object name ${name} is inside ${STAGING_FOLDER}`),
    );
  }
  return normal;
}

export function isWithin(parent: string, child: string): boolean {
  const rel = path.relative(parent, child);
  return rel === '' || (rel !== '..' && !rel.startsWith(`..${path.sep}`) && !path.isAbsolute(rel));
}

async function assertFolder(
  root: FilesystemRoot,
  shown: string,
  real: string,
  operation: string,
): Promise<void> {
  let isFolder: boolean;
  try {
    isFolder = (await stat(real)).isDirectory();
  } catch (err) {
    throw filesystemError(err, root.linkedService, shown, operation);
  }
  if (!isFolder) {
    throw new FerryError(
      'store_object_missing',
      filesystemMessage(root.linkedService, `${shown} is not a folder (${operation})`),
    );
  }
}

async function realpathOrSelf(p: string): Promise<string> {
  try {
    return await realpath(p);
  } catch {
    return p;
  }
}

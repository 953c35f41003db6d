/**
 * Linked service properties and activity options for the S3 store, compiled once, the S3 client
 * built from them, and the key rules: a prefix is read as a folder, object names are relative to it.
 */
import { S3Client } from '@aws-sdk/client-s3';
import path from 'node:path';
import { FerryError } from '../../common/errors.ts';
import { S3Properties, S3Sink, S3Source } from '../../protocol/stores.ts';
import type { ResolvedEndpointT } from '../../protocol/task.ts';
import { validator, type Validator } from '../../protocol/validate.ts';
import { s3Message } from './s3-errors.ts';

/** Sources never list keys inside a folder of this name (a file sink's unfinished attempts). */
export const STAGING_FOLDER = '.ferry-staging';

export const DEFAULT_FILES_PER_TASK = 64;
export const DEFAULT_BYTES_PER_TASK = 256 * 1024 * 1024;

/** A bucket on one store, with a client for it. The client holds sockets: destroy() it when done. */
export interface S3Store {
  linkedService: string;
  bucket: string;
  client: S3Client;
}

export interface CompiledS3Source {
  /** Key prefix to list, '' or ending in '/'. */
  prefix: string;
  glob: string | undefined;
  filesPerTask: number;
  bytesPerTask: number;
}

export interface CompiledS3Sink {
  /** Key prefix objects are published under, '' or ending in '/'. */
  prefix: string;
}

// Compiled on first use rather than at import time.
let validators:
  | {
      properties: Validator<typeof S3Properties>;
      source: Validator<typeof S3Source>;
      sink: Validator<typeof S3Sink>;
    }
  | undefined;

function schemas(): NonNullable<typeof validators> {
  validators ??= {
    properties: validator(S3Properties),
    source: validator(S3Source),
    sink: validator(S3Sink),
  };
  return validators;
}

export function compileS3Source(endpoint: ResolvedEndpointT): CompiledS3Source {
  const options = schemas().source.parse(
    { linkedService: endpoint.linkedService, ...endpoint.options },
    `s3 source "${endpoint.linkedService}"`,
  );
  return {
    prefix: folderPrefix(endpoint.linkedService, options.prefix ?? ''),
    glob: options.glob,
    filesPerTask: options.filesPerTask ?? DEFAULT_FILES_PER_TASK,
    bytesPerTask: options.bytesPerTask ?? DEFAULT_BYTES_PER_TASK,
  };
}

export function compileS3Sink(endpoint: ResolvedEndpointT): CompiledS3Sink {
  const options = schemas().sink.parse(
    { linkedService: endpoint.linkedService, ...endpoint.options },
    `s3 sink "${endpoint.linkedService}"`,
  );
  return { prefix: folderPrefix(endpoint.linkedService, options.prefix ?? '') };
}

/** Builds a client from the linked service properties; secrets go to the signer and nowhere else. */
export function openS3Store(endpoint: ResolvedEndpointT): S3Store {
  const linkedService = endpoint.linkedService;
  const p = schemas().properties.parse(endpoint.properties, `s3 linked service "${linkedService}"`);
  const client = new S3Client({
    region: p.region,
    ...(p.endpoint === undefined ? {} : { endpoint: p.endpoint }),
    forcePathStyle: p.forcePathStyle ?? false,
    credentials: { accessKeyId: p.accessKeyId, secretAccessKey: p.secretAccessKey },
    // S3-compatible stores often reject the SDK's default extra checksums; our sha256 is the check.
    requestChecksumCalculation: 'WHEN_REQUIRED',
    responseChecksumValidation: 'WHEN_REQUIRED',
    maxAttempts: 3,
  });
  return { linkedService, bucket: p.bucket, client };
}

/** `a/b`, `/a/b/`, `a//b` -> `a/b/`; '' and '.' -> '' (the whole bucket). */
function folderPrefix(linkedService: string, prefix: string): string {
  const segments = prefix.split('/').filter((s) => s !== '' && s !== '.');
  if (segments.includes('..')) {
    throw new FerryError(
      'bad_request',
      s3Message(linkedService, `prefix ${JSON.stringify(prefix)} holds a '..' segment`),
    );
  }
  return segments.length === 0 ? '' : `${segments.join('/')}/`;
}

/**
 * Normalises the relative name of an object a sink publishes (`a//b/./c.csv` -> `a/b/c.csv`) and
 * refuses names that are absolute, climb out of the prefix, or reach into a staging folder.
 */
export function checkObjectName(linkedService: string, name: string): string {
  const refuse = (code: 'bad_request' | 'forbidden', why: string): FerryError =>
    new FerryError(code, s3Message(linkedService, `object name ${JSON.stringify(name)} ${why}`));
  if (name.includes('\0')) throw refuse('bad_request', 'holds a NUL byte');
  if (path.posix.isAbsolute(name)) throw refuse('forbidden', 'is absolute');
  const normal = path.posix.normalize(name);
  if (normal === '..' || normal.startsWith('../')) throw refuse('forbidden', 'escapes the sink prefix');
  if (normal === '.' || normal === '' || normal.endsWith('/'))
    throw refuse('bad_request', 'does not name an object');
  if (normal.split('/').includes(STAGING_FOLDER)) throw refuse('forbidden', `is inside ${STAGING_FOLDER}`);
  return normal;
}

/**
 * Linked service properties and activity options for the Azure Blob store, compiled once, and the
 * blob naming rules: a prefix is a '/'-separated folder-like path inside the container, and an
 * object published by a sink is `<prefix>/<name>` with its name normalised and kept below the prefix.
 */
import path from 'node:path';
import { BlobServiceClient, StorageSharedKeyCredential, type ContainerClient } from '@azure/storage-blob';
import { FerryError } from '../../common/errors.ts';
import type { ResolvedEndpointT } from '../../protocol/task.ts';
import {
  AzureBlobProperties,
  AzureBlobSink,
  AzureBlobSource,
  type AzureBlobLinkedProperties,
  type AzureBlobSinkOptions,
  type AzureBlobSourceOptions,
} from '../../protocol/stores.ts';
import { validator, type Validator } from '../../protocol/validate.ts';
import { azureBlobMessage } from './azure-blob-errors.ts';

/** Sinks of other stores stage below this folder name; a source never lists it. */
export const STAGING_FOLDER = '.ferry-staging';

export const DEFAULT_FILES_PER_TASK = 64;
export const DEFAULT_BYTES_PER_TASK = 256 * 1024 * 1024;

/**
 * Ferry retries whole tasks on other nodes, so the SDK only smooths over short hiccups: a refused
 * connection should reach the task outcome in seconds, not after the SDK's default minute of retries.
 */
const RETRY_OPTIONS = { maxTries: 3, retryDelayInMs: 200, maxRetryDelayInMs: 2000 };

/** A container of a linked service, with a client authenticated by its properties. */
export interface AzureBlobContainer {
  linkedService: string;
  container: string;
  client: ContainerClient;
}

export interface CompiledAzureBlobSource {
  /** Normalised prefix without leading or trailing '/' ('' = the whole container). */
  prefix: string;
  glob: string | undefined;
  filesPerTask: number;
  bytesPerTask: number;
}

export interface CompiledAzureBlobSink {
  prefix: string;
}

// Compiled on first use rather than at import time.
let validators:
  | {
      properties: Validator<typeof AzureBlobProperties>;
      source: Validator<typeof AzureBlobSource>;
      sink: Validator<typeof AzureBlobSink>;
    }
  | undefined;

function schemas(): NonNullable<typeof validators> {
  validators ??= {
    properties: validator(AzureBlobProperties),
    source: validator(AzureBlobSource),
    sink: validator(AzureBlobSink),
  };
  return validators;
}

export function compileAzureBlobSource(endpoint: ResolvedEndpointT): CompiledAzureBlobSource {
  const ls = endpoint.linkedService;
  const options: AzureBlobSourceOptions = schemas().source.parse(
    { linkedService: ls, ...endpoint.options },
    `azure-blob source "${ls}"`,
  );
  return {
    prefix: normalisePrefix(ls, options.prefix ?? ''),
    glob: options.glob,
    filesPerTask: options.filesPerTask ?? DEFAULT_FILES_PER_TASK,
    bytesPerTask: options.bytesPerTask ?? DEFAULT_BYTES_PER_TASK,
  };
}

export function compileAzureBlobSink(endpoint: ResolvedEndpointT): CompiledAzureBlobSink {
  const ls = endpoint.linkedService;
  const options: AzureBlobSinkOptions = schemas().sink.parse(
    { linkedService: ls, ...endpoint.options },
    `azure-blob sink "${ls}"`,
  );
  return { prefix: normalisePrefix(ls, options.prefix ?? '') };
}

/**
 * A client for the linked service's container. Credentials: a connection string, or an account URL
 * with a shared key or a SAS token. Nothing is sent until the first request.
 */
export function openContainer(endpoint: ResolvedEndpointT): AzureBlobContainer {
  const linkedService = endpoint.linkedService;
  const props: AzureBlobLinkedProperties = schemas().properties.parse(
    endpoint.properties,
    `azure-blob linked service "${linkedService}"`,
  );
  const pipelineOptions = { retryOptions: RETRY_OPTIONS };
  let service: BlobServiceClient;
  try {
    if (props.connectionString !== undefined) {
      if (props.accountUrl !== undefined || props.accountKey !== undefined || props.sasToken !== undefined) {
        throw credentialsError(linkedService);
      }
      service = BlobServiceClient.fromConnectionString(props.connectionString, pipelineOptions);
    } else if (props.accountUrl !== undefined && props.accountKey !== undefined) {
      if (props.accountName === undefined || props.sasToken !== undefined)
        throw credentialsError(linkedService);
      const credential = new StorageSharedKeyCredential(props.accountName, props.accountKey);
      service = new BlobServiceClient(props.accountUrl, credential, pipelineOptions);
    } else if (props.accountUrl !== undefined && props.sasToken !== undefined) {
      const url = new URL(props.accountUrl);
      url.search = props.sasToken.replace(/^\?/, '');
      service = new BlobServiceClient(url.toString(), undefined, pipelineOptions);
    } else {
      throw credentialsError(linkedService);
    }
  } catch (err) {
    if (err instanceof FerryError) throw err;
    // The SDK's parse errors may quote the connection string: say only what was wrong with it.
    throw new FerryError(
      'bad_request',
      azureBlobMessage(linkedService, 'the connection string or account URL cannot be parsed'),
      { retryable: false },
    );
  }
  return { linkedService, container: props.container, client: service.getContainerClient(props.container) };
}

function credentialsError(linkedService: string): FerryError {
  return new FerryError(
    'bad_request',
    azureBlobMessage(
      linkedService,
      'give either connectionString, or accountUrl with accountName and accountKey, or accountUrl with sasToken',
    ),
  );
}

/** `a//b/` -> `a/b`; '' and '/' are the container root. `..` is refused: blob names keep it literally. */
export function normalisePrefix(linkedService: string, prefix: string): string {
  const segments = prefix.split('/').filter((s) => s !== '' && s !== '.');
  if (segments.includes('..')) {
    throw new FerryError(
      'bad_request',
      azureBlobMessage(linkedService, `prefix ${JSON.stringify(prefix)} holds a '..' segment`),
    );
  }
  return segments.join('/');
}

/** The full blob name of `name` below `prefix`. */
export function blobName(prefix: string, name: string): string {
  return prefix === '' ? name : `${prefix}/${name}`;
}

/**
 * Normalises the relative name of an object a sink publishes (`a//b/./c.csv` -> `a/b/c.csv`) and
 * refuses names that are absolute, climb out of the prefix, or reach into a staging folder.
 */
export function checkObjectName(linkedService: string, name: string): string {
  const refuse = (code: 'bad_request' | 'forbidden', why: string): FerryError =>
    new FerryError(code, azureBlobMessage(linkedService, why));
  if (name.includes('\0'))
    throw refuse('bad_request', `object name ${JSON.stringify(name)} holds a NUL byte`);
  if (path.posix.isAbsolute(name)) throw refuse('forbidden', `object name ${name} is absolute`);
  const normal = path.posix.normalize(name);
  if (normal === '..' || normal.startsWith('../')) {
    throw refuse('forbidden', `object name ${name} escapes the sink prefix`);
  }
  if (normal === '.' || normal === '' || normal.endsWith('/')) {
    throw refuse('bad_request', `object name ${JSON.stringify(name)} does not name a blob`);
  }
  if (normal.split('/').includes(STAGING_FOLDER)) {
    throw refuse('forbidden', `object name ${name} is inside ${STAGING_FOLDER}`);
  }
  return normal;
}

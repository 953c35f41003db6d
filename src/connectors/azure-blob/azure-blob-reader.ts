/**
 * Reads a FilePartition of blobs: one SourceObject per blob, downloaded only when the consumer asks
 * for it, so a partition of many blobs holds one connection at a time. The SDK's download stream
 * resumes a broken connection by itself; what it cannot recover from reaches the consumer as a
 * FerryError.
 */
import { PassThrough } from 'node:stream';
import { FerryError } from '../../common/errors.ts';
import type { PartitionT, ResolvedEndpointT } from '../../protocol/task.ts';
import type { AttemptContext, SourceObject } from '../connector.ts';
import { rangedPeek } from '../object-store/ranged-peek.ts';
import { onAbort } from '../on-abort.ts';
import {
  blobName,
  compileAzureBlobSource,
  openContainer,
  type AzureBlobContainer,
} from './azure-blob-config.ts';
import { azureBlobError, azureBlobMessage, cancelledError } from './azure-blob-errors.ts';

/** How many times the download stream reopens a connection that broke mid-blob. */
const DOWNLOAD_RETRIES = 5;

export async function* readAzureBlob(
  source: ResolvedEndpointT,
  partition: PartitionT,
  ctx: AttemptContext,
): AsyncGenerator<SourceObject> {
  if (partition.kind !== 'files') {
    throw new FerryError(
      'bad_request',
      azureBlobMessage(
        source.linkedService,
        `cannot read a ${partition.kind} partition; an azure-blob source plans files`,
      ),
    );
  }
  const options = compileAzureBlobSource(source);
  const store = openContainer(source);
  for (const file of partition.files) {
    if (ctx.signal.aborted) throw cancelledError(store.linkedService, 'read');
    yield await openBlob(store, file.path, blobName(options.prefix, file.path), ctx.signal);
  }
}

async function openBlob(
  store: AzureBlobContainer,
  name: string,
  blob: string,
  signal: AbortSignal,
): Promise<SourceObject> {
  const target = { ...store, blob };
  const client = store.client.getBlobClient(blob);
  let body: NodeJS.ReadableStream | undefined;
  let size: number;
  let etag: string | undefined;
  try {
    const response = await client.download(0, undefined, {
      abortSignal: signal,
      maxRetryRequests: DOWNLOAD_RETRIES,
    });
    body = response.readableStreamBody;
    size = response.contentLength ?? 0;
    etag = response.etag;
  } catch (err) {
    if (signal.aborted) throw cancelledError(store.linkedService, 'read');
    throw azureBlobError(err, target, 'read');
  }
  if (body === undefined) {
    throw new FerryError(
      'internal',
      azureBlobMessage(store.linkedService, `no body downloading ${blob} (read)`),
    );
  }
  const download = body as NodeJS.ReadableStream & { destroy(error?: Error): void };

  // The consumer sees FerryErrors, not SDK errors, so the stream it gets is a pass-through that the
  // download feeds and whose failures are translated on the way.
  const stream = new PassThrough();
  // A failure before the consumer attaches its pipeline must not be an uncaught 'error': the stream
  // keeps it, and pipeline(), finished() or iteration report it to the consumer.
  stream.on('error', () => {});
  const unhook = onAbort(signal, () => stream.destroy(cancelledError(store.linkedService, 'read')));
  download.on('error', (err) => {
    stream.destroy(
      signal.aborted ? cancelledError(store.linkedService, 'read') : azureBlobError(err, target, 'read'),
    );
  });
  stream.on('close', () => {
    unhook();
    download.destroy();
  });
  download.pipe(stream);
  // Ranges of the blob as opened: a blob replaced since answers 412, a store error.
  const peek = rangedPeek(
    size,
    (position, count) =>
      client.downloadToBuffer(position, count, {
        abortSignal: signal,
        conditions: etag === undefined ? {} : { ifMatch: etag },
      }),
    (err) =>
      signal.aborted ? cancelledError(store.linkedService, 'read') : azureBlobError(err, target, 'read'),
  );
  return { name, stream, rows: () => undefined, peek };
}

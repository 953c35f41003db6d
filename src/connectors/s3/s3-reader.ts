/**
 * Reads a FilePartition of an S3 source: one SourceObject per object, each fetched only when the
 * consumer asks for it, so a partition of many objects holds one response at a time. The client lives
 * until the generator is done and the last stream it handed out has closed.
 */
import { GetObjectCommand } from '@aws-sdk/client-s3';
import { PassThrough, Readable } from 'node:stream';
import { FerryError } from '../../common/errors.ts';
import type { PartitionT, ResolvedEndpointT } from '../../protocol/task.ts';
import type { AttemptContext, SourceObject } from '../connector.ts';
import { rangedPeek } from '../object-store/ranged-peek.ts';
import { onAbort } from '../on-abort.ts';
import { compileS3Source, openS3Store, type S3Store } from './s3-config.ts';
import { cancelledError, s3Error, s3Message } from './s3-errors.ts';

export async function* readS3(
  source: ResolvedEndpointT,
  partition: PartitionT,
  ctx: AttemptContext,
): AsyncGenerator<SourceObject> {
  if (partition.kind !== 'files') {
    throw new FerryError(
      'bad_request',
      s3Message(source.linkedService, `cannot read a ${partition.kind} partition; an s3 source plans files`),
    );
  }
  const options = compileS3Source(source);
  const store = openS3Store(source);
  let open = 0;
  let done = false;
  const release = (): void => {
    if (done && open === 0) store.client.destroy();
  };
  try {
    for (const file of partition.files) {
      if (ctx.signal.aborted) throw cancelledError(store.linkedService, 'read');
      const object = await openObject(store, options.prefix + file.path, file.path, ctx.signal);
      open++;
      object.stream.once('close', () => {
        open--;
        release();
      });
      yield object;
    }
  } finally {
    done = true;
    release();
  }
}

async function openObject(
  store: S3Store,
  key: string,
  name: string,
  signal: AbortSignal,
): Promise<SourceObject> {
  const target = { bucket: store.bucket, key };
  let body: unknown;
  let size: number;
  let etag: string | undefined;
  try {
    const response = await store.client.send(new GetObjectCommand({ Bucket: store.bucket, Key: key }), {
      abortSignal: signal,
    });
    body = response.Body;
    size = response.ContentLength ?? 0;
    etag = response.ETag;
  } catch (err) {
    throw s3Error(err, store.linkedService, target, 'read');
  }
  if (!(body instanceof Readable)) {
    throw new FerryError(
      'store_error',
      s3Message(store.linkedService, `${key}: the response has no body (read)`),
    );
  }
  // The consumer sees FerryErrors, not SDK errors: the body feeds a pass-through that translates them.
  const stream = new PassThrough();
  // A failure before the consumer attaches its pipeline is kept by the stream, not thrown uncaught.
  stream.on('error', () => {});
  const unhook = onAbort(signal, () => stream.destroy(cancelledError(store.linkedService, 'read')));
  body.on('error', (err) => stream.destroy(s3Error(err, store.linkedService, target, 'read')));
  stream.on('close', () => {
    unhook();
    body.destroy();
  });
  body.pipe(stream);
  // Ranges of the object as opened: one replaced since answers 412, a store error.
  const peek = rangedPeek(
    size,
    async (position, count) => {
      const response = await store.client.send(
        new GetObjectCommand({
          Bucket: store.bucket,
          Key: key,
          Range: `bytes=${position}-${position + count - 1}`,
          ...(etag === undefined ? {} : { IfMatch: etag }),
        }),
        { abortSignal: signal },
      );
      return Buffer.from(await response.Body!.transformToByteArray());
    },
    (err) =>
      signal.aborted
        ? cancelledError(store.linkedService, 'read')
        : s3Error(err, store.linkedService, target, 'read'),
  );
  return { name, stream, rows: () => undefined, peek };
}

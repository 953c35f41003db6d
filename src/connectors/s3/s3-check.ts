/**
 * The S3 store's connection test, on the linked service's bucket (options, and so a prefix, are
 * ignored). Read: lists the first page of the bucket, as a plan does, and reads the metadata of the
 * first object, which takes both rights a source uses (s3:ListBucket, s3:GetObject). Write: puts a small object
 * `.ferry-staging/<probe>` (a folder no source lists), reads its size back, and deletes it.
 */
import {
  DeleteObjectCommand,
  HeadObjectCommand,
  ListObjectsV2Command,
  PutObjectCommand,
} from '@aws-sdk/client-s3';
import { FerryError } from '../../common/errors.ts';
import type { ResolvedEndpointT } from '../../protocol/task.ts';
import {
  CLEANUP_MS,
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
import { STAGING_FOLDER, openS3Store, type S3Store } from './s3-config.ts';
import { cancelledError, s3Error, s3Message, type S3Target } from './s3-errors.ts';

export async function checkS3Read(endpoint: ResolvedEndpointT, ctx: ConnectorContext): Promise<string> {
  try {
    const store = openS3Store(endpoint);
    try {
      const bucket = JSON.stringify(store.bucket);
      const page = await request(store, ctx.signal, { bucket: store.bucket }, TEST_READ, () =>
        store.client.send(new ListObjectsV2Command({ Bucket: store.bucket }), {
          abortSignal: ctx.signal,
        }),
      );
      const key = page.Contents?.[0]?.Key;
      if (key === undefined) return `listed bucket ${bucket} (empty)`;
      await request(store, ctx.signal, { bucket: store.bucket, key }, TEST_READ, () =>
        store.client.send(new HeadObjectCommand({ Bucket: store.bucket, Key: key }), {
          abortSignal: ctx.signal,
        }),
      );
      const seen = `${counted(page.KeyCount ?? page.Contents?.length ?? 0, 'object', 'objects')} seen${page.IsTruncated === true ? ', more not listed' : ''}`;
      return `listed bucket ${bucket} (${seen}) and read the metadata of ${JSON.stringify(key)}`;
    } finally {
      store.client.destroy();
    }
  } catch (err) {
    throw withHint(err, hints(endpoint, 's3:ListBucket and s3:GetObject'));
  }
}

export async function checkS3Write(
  endpoint: ResolvedEndpointT,
  ctx: ConnectorContext,
  probeName: string,
): Promise<string> {
  const ls = endpoint.linkedService;
  const say = (text: string): string => s3Message(ls, text);
  try {
    checkProbeName(probeName, say);
    const store = openS3Store(endpoint);
    try {
      const key = `${STAGING_FOLDER}/${probeName}`;
      const target = { bucket: store.bucket, key };
      const shown = `${key} in bucket ${JSON.stringify(store.bucket)}`;
      // 'maybe': the put was sent, and no answer from the store says it failed.
      let probe: 'none' | 'maybe' | 'made' = 'maybe';
      let size: number | undefined;
      try {
        try {
          await request(store, ctx.signal, target, TEST_WRITE, () =>
            store.client.send(
              new PutObjectCommand({
                Bucket: store.bucket,
                Key: key,
                Body: PROBE_BYTES,
                ContentLength: PROBE_BYTES.length,
              }),
              { abortSignal: ctx.signal },
            ),
          );
        } catch (err) {
          if (err instanceof FerryError && err.code !== 'cancelled' && err.code !== 'store_unreachable') {
            probe = 'none';
          }
          throw refusal(err, store, say);
        }
        probe = 'made';
        const head = await request(store, ctx.signal, target, TEST_WRITE, () =>
          store.client.send(new HeadObjectCommand({ Bucket: store.bucket, Key: key }), {
            abortSignal: ctx.signal,
          }),
        );
        size = head.ContentLength;
        try {
          await request(store, ctx.signal, target, TEST_CLEANUP, () =>
            store.client.send(new DeleteObjectCommand({ Bucket: store.bucket, Key: key }), {
              abortSignal: ctx.signal,
            }),
          );
        } catch (err) {
          throw withHint(err, {
            store_auth: `delete ${shown} by hand; the access key needs s3:DeleteObject too (a sink's abort uses s3:AbortMultipartUpload)`,
          });
        }
        probe = 'none';
      } finally {
        if (probe !== 'none') await deleteProbe(store, key);
      }
      if (size !== PROBE_BYTES.length) {
        throw new FerryError(
          'store_error',
          say(`put ${PROBE_BYTES.length} bytes to ${shown} but its size reads ${size} (${TEST_WRITE})`),
          { retryable: false },
        );
      }
      return `wrote and removed ${shown}`;
    } finally {
      store.client.destroy();
    }
  } catch (err) {
    throw withHint(err, hints(endpoint, 's3:PutObject and s3:DeleteObject'));
  }
}

/** One request under the signal: its failure mapped by s3Error, or cancelled when the signal aborted. */
async function request<O>(
  store: S3Store,
  signal: AbortSignal,
  target: S3Target,
  operation: string,
  send: () => Promise<O>,
): Promise<O> {
  if (signal.aborted) throw cancelledError(store.linkedService, operation);
  try {
    return await send();
  } catch (err) {
    throw signal.aborted
      ? cancelledError(store.linkedService, operation)
      : s3Error(err, store.linkedService, target, operation);
  }
}

/** Best effort, after a failure that is reported instead: deletes the probe, on a signal of its own. */
async function deleteProbe(store: S3Store, key: string): Promise<void> {
  await store.client
    .send(new DeleteObjectCommand({ Bucket: store.bucket, Key: key }), {
      abortSignal: AbortSignal.timeout(CLEANUP_MS),
    })
    .catch(() => {});
}

/**
 * A put the store refused to credentials it accepted (AccessDenied: a policy without s3:PutObject),
 * said as such; a key it does not know, or a wrong signature, stays a credentials failure.
 */
function refusal(err: unknown, store: S3Store, say: (text: string) => string): unknown {
  if (!(err instanceof FerryError) || !(err.cause instanceof Error) || err.cause.name !== 'AccessDenied') {
    return err;
  }
  return writeRefused(
    err,
    say,
    `a sink puts objects (multipart uploads) and aborts them: allow the access key s3:PutObject, s3:AbortMultipartUpload and s3:DeleteObject on arn:aws:s3:::${store.bucket}/*`,
  );
}

function hints(endpoint: ResolvedEndpointT, rights: string): CheckHints {
  const bucket = JSON.stringify(String(endpoint.properties['bucket']));
  return {
    store_auth: `check the linked service's accessKeyId and secretAccessKey, and that the key is allowed ${rights} on bucket ${bucket}`,
    store_unreachable:
      "check the linked service's endpoint and region, and that this node can reach the store (DNS, proxies, firewalls)",
    store_object_missing: `check the linked service's bucket and region: there is no bucket ${bucket} there`,
  };
}

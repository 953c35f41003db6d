/**
 * Plans an S3 source: lists the objects under the prefix (every page), keeps those the glob matches
 * (relative to the prefix), sorts them by key and groups them into FilePartitions with the same rule
 * as the filesystem planner. Folder markers (keys ending in '/') and anything under a
 * `.ferry-staging/` folder are skipped.
 */
import { ListObjectsV2Command, type ListObjectsV2CommandOutput } from '@aws-sdk/client-s3';
import picomatch from 'picomatch';
import type { PartitionT, ResolvedEndpointT } from '../../protocol/task.ts';
import type { ConnectorContext } from '../connector.ts';
import { groupFiles, type ListedFile } from '../filesystem/filesystem-planner.ts';
import { STAGING_FOLDER, compileS3Source, openS3Store, type S3Store } from './s3-config.ts';
import { cancelledError, s3Error } from './s3-errors.ts';

export async function planS3(source: ResolvedEndpointT, ctx: ConnectorContext): Promise<PartitionT[]> {
  const options = compileS3Source(source);
  const store = openS3Store(source);
  try {
    const matches = options.glob === undefined ? undefined : picomatch(options.glob);
    const objects = await listObjects(store, options.prefix, ctx.signal);
    const selected = matches ? objects.filter((o) => matches(o.path)) : objects;
    return groupFiles(selected, options.filesPerTask, options.bytesPerTask);
  } finally {
    store.client.destroy();
  }
}

/** Every object below `prefix`, named relative to it, in code unit order (the same plan on every node). */
export async function listObjects(
  store: S3Store,
  prefix: string,
  signal: AbortSignal,
): Promise<ListedFile[]> {
  const files: ListedFile[] = [];
  let token: string | undefined;
  do {
    if (signal.aborted) throw cancelledError(store.linkedService, 'plan');
    let page: ListObjectsV2CommandOutput;
    try {
      page = await store.client.send(
        new ListObjectsV2Command({
          Bucket: store.bucket,
          ...(prefix === '' ? {} : { Prefix: prefix }),
          ...(token === undefined ? {} : { ContinuationToken: token }),
        }),
        { abortSignal: signal },
      );
    } catch (err) {
      throw s3Error(err, store.linkedService, { bucket: store.bucket }, 'plan');
    }
    for (const object of page.Contents ?? []) {
      const key = object.Key;
      if (key === undefined || !key.startsWith(prefix)) continue;
      const rel = key.slice(prefix.length);
      if (rel === '' || rel.endsWith('/') || rel.split('/').includes(STAGING_FOLDER)) continue;
      files.push({ path: rel, size: object.Size ?? 0 });
    }
    token = page.IsTruncated === true ? page.NextContinuationToken : undefined;
  } while (token !== undefined);
  return files.sort((a, b) => (a.path < b.path ? -1 : a.path > b.path ? 1 : 0));
}

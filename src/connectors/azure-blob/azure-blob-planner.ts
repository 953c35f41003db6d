/**
 * Plans an Azure Blob source: lists the blobs below the prefix (flat listing, so no per-folder
 * requests), filters them with the glob relative to the prefix, and groups them into FilePartitions
 * the same way the filesystem planner groups files. Blobs under a `.ferry-staging` folder and
 * zero-byte folder markers (names ending in '/') are not data and are skipped.
 */
import picomatch from 'picomatch';
import type { PartitionT, ResolvedEndpointT } from '../../protocol/task.ts';
import type { ConnectorContext } from '../connector.ts';
import { groupFiles, type ListedFile } from '../filesystem/filesystem-planner.ts';
import { STAGING_FOLDER, compileAzureBlobSource, openContainer } from './azure-blob-config.ts';
import { azureBlobError, cancelledError } from './azure-blob-errors.ts';

export async function planAzureBlob(source: ResolvedEndpointT, ctx: ConnectorContext): Promise<PartitionT[]> {
  const options = compileAzureBlobSource(source);
  const store = openContainer(source);
  const listPrefix = options.prefix === '' ? '' : `${options.prefix}/`;
  const matches = options.glob === undefined ? undefined : picomatch(options.glob);
  const files: ListedFile[] = [];
  try {
    for await (const blob of store.client.listBlobsFlat({ prefix: listPrefix, abortSignal: ctx.signal })) {
      if (ctx.signal.aborted) throw cancelledError(store.linkedService, 'plan');
      const rel = blob.name.slice(listPrefix.length);
      if (rel === '' || rel.endsWith('/') || rel.split('/').includes(STAGING_FOLDER)) continue;
      if (matches && !matches(rel)) continue;
      files.push({ path: rel, size: blob.properties.contentLength ?? 0 });
    }
  } catch (err) {
    if (ctx.signal.aborted) throw cancelledError(store.linkedService, 'plan');
    throw azureBlobError(err, store, 'plan');
  }
  // Code unit order, so the plan is the same on every node whatever its locale.
  files.sort((a, b) => (a.path < b.path ? -1 : a.path > b.path ? 1 : 0));
  return groupFiles(files, options.filesPerTask, options.bytesPerTask);
}

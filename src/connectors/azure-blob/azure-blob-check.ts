/**
 * The Azure Blob store's connection test, on the linked service's container (options, and so a
 * prefix, are ignored). Read: lists one blob of the container and reads the properties of the blob
 * it names, which takes both permissions a source uses (list, read). Write: uploads a small blob
 * `.ferry-staging/<probe>` (a folder no source lists), reads its size back, and deletes it.
 */
import type { ContainerListBlobFlatSegmentResponse } from '@azure/storage-blob';
import { FerryError } from '../../common/errors.ts';
import type { ResolvedEndpointT } from '../../protocol/task.ts';
import {
  CLEANUP_MS,
  PROBE_BYTES,
  TEST_CLEANUP,
  TEST_READ,
  TEST_WRITE,
  checkProbeName,
  withHint,
  writeRefused,
  type CheckHints,
} from '../connection-check.ts';
import type { ConnectorContext } from '../connector.ts';
import { STAGING_FOLDER, openContainer, type AzureBlobContainer } from './azure-blob-config.ts';
import {
  azureBlobError,
  azureBlobMessage,
  cancelledError,
  isPermissionRefused,
  type BlobTarget,
} from './azure-blob-errors.ts';

export async function checkAzureBlobRead(
  endpoint: ResolvedEndpointT,
  ctx: ConnectorContext,
): Promise<string> {
  try {
    const store = openContainer(endpoint);
    const container = JSON.stringify(store.container);
    const pages = store.client.listBlobsFlat({ abortSignal: ctx.signal }).byPage({ maxPageSize: 1 });
    const page = await request(store, ctx.signal, store, TEST_READ, async () => {
      try {
        const first: IteratorResult<ContainerListBlobFlatSegmentResponse> = await pages.next();
        return first.done === true ? undefined : first.value;
      } finally {
        await pages.return?.(undefined);
      }
    });
    const blob = page?.segment.blobItems[0]?.name;
    if (blob === undefined) return `listed container ${container} (empty)`;
    await request(store, ctx.signal, { ...store, blob }, TEST_READ, () =>
      store.client.getBlobClient(blob).getProperties({ abortSignal: ctx.signal }),
    );
    return `listed container ${container} (1 blob seen) and read the properties of ${JSON.stringify(blob)}`;
  } catch (err) {
    throw withHint(err, hints(endpoint, 'list and read'));
  }
}

export async function checkAzureBlobWrite(
  endpoint: ResolvedEndpointT,
  ctx: ConnectorContext,
  probeName: string,
): Promise<string> {
  const ls = endpoint.linkedService;
  const say = (text: string): string => azureBlobMessage(ls, text);
  try {
    checkProbeName(probeName, say);
    const store = openContainer(endpoint);
    const blob = `${STAGING_FOLDER}/${probeName}`;
    const target = { ...store, blob };
    const client = store.client.getBlockBlobClient(blob);
    const shown = `${blob} in container ${JSON.stringify(store.container)}`;
    // 'maybe': the upload was sent, and no answer from the service says it failed.
    let probe: 'none' | 'maybe' | 'made' = 'maybe';
    let size: number | undefined;
    try {
      try {
        await request(store, ctx.signal, target, TEST_WRITE, () =>
          client.upload(PROBE_BYTES, PROBE_BYTES.length, { abortSignal: ctx.signal }),
        );
      } catch (err) {
        if (err instanceof FerryError && err.code !== 'cancelled' && err.code !== 'store_unreachable') {
          probe = 'none';
        }
        throw refusal(err, say);
      }
      probe = 'made';
      const properties = await request(store, ctx.signal, target, TEST_WRITE, () =>
        client.getProperties({ abortSignal: ctx.signal }),
      );
      size = properties.contentLength;
      try {
        await request(store, ctx.signal, target, TEST_CLEANUP, () =>
          client.delete({ abortSignal: ctx.signal }),
        );
      } catch (err) {
        throw withHint(err, {
          store_auth: `delete ${shown} by hand; the credentials need the delete permission too`,
        });
      }
      probe = 'none';
    } finally {
      if (probe !== 'none') {
        await client.deleteIfExists({ abortSignal: AbortSignal.timeout(CLEANUP_MS) }).catch(() => {});
      }
    }
    if (size !== PROBE_BYTES.length) {
      throw new FerryError(
        'store_error',
        say(`uploaded ${PROBE_BYTES.length} bytes to ${shown} but its size reads ${size} (${TEST_WRITE})`),
        { retryable: false },
      );
    }
    return `wrote and removed ${shown}`;
  } catch (err) {
    throw withHint(err, hints(endpoint, 'write and delete'));
  }
}

/** One request under the signal: its failure mapped by azureBlobError, or cancelled when the signal aborted. */
async function request<O>(
  store: AzureBlobContainer,
  signal: AbortSignal,
  target: BlobTarget,
  operation: string,
  send: () => Promise<O>,
): Promise<O> {
  if (signal.aborted) throw cancelledError(store.linkedService, operation);
  try {
    return await send();
  } catch (err) {
    throw signal.aborted
      ? cancelledError(store.linkedService, operation)
      : azureBlobError(err, target, operation);
  }
}

/** An upload refused to credentials the service accepted (a SAS token without write), said as such. */
function refusal(err: unknown, say: (text: string) => string): unknown {
  if (!(err instanceof FerryError) || !isPermissionRefused(err)) return err;
  return writeRefused(
    err,
    say,
    'a sink writes and commits blocks: give the SAS token the create and write permissions (and delete, for this test), or the identity the Storage Blob Data Contributor role on the container',
  );
}

function hints(endpoint: ResolvedEndpointT, may: string): CheckHints {
  const container = JSON.stringify(String(endpoint.properties['container']));
  return {
    store_auth: `check the linked service's connection string, account key or SAS token, and that it may ${may} blobs in container ${container}`,
    store_unreachable:
      "check the account URL in the linked service's connection string or accountUrl, and that this node can reach it (DNS, proxies, firewalls)",
    store_object_missing: `check the linked service's container: the account has no container ${container}`,
  };
}

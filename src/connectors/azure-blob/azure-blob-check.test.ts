/**
 * What only the Azure Blob connection test does: what a SAS token lacking a permission gets, against
 * Azurite. One that may list and read passes the read check and has its write refused; one that may
 * write but not delete leaves the probe, and says how to remove it. The rules every store keeps are
 * in the conformance suite (connection-checks.ts).
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import {
  BlobServiceClient,
  ContainerSASPermissions,
  StorageSharedKeyCredential,
  generateBlobSASQueryParameters,
  type ContainerClient,
} from '@azure/storage-blob';
import { DEV_ACCOUNT, DEV_KEY, startAzurite, type Azurite } from '../../../test/helpers/azurite.ts';
import type { ResolvedEndpointT } from '../../protocol/task.ts';
import type { ConnectorContext } from '../connector.ts';
import { azureBlobSink, azureBlobSource } from './azure-blob-connector.ts';
import { rejectsWith } from '../../../test/helpers/rejects-with.ts';

const PROBE = 'ferry_connection_test_5e6f70';

let azurite: Azurite;
let service: BlobServiceClient;
let counter = 0;

before(async () => {
  azurite = await startAzurite();
  service = BlobServiceClient.fromConnectionString(azurite.connectionString());
});

after(async () => {
  await azurite.stop();
});

async function freshContainer(): Promise<ContainerClient> {
  const container = service.getContainerClient(`check-${process.pid}-${++counter}`);
  await container.create();
  await container.getBlockBlobClient('in/a.csv').upload('a,b\n', 4);
  return container;
}

/** The container's linked service with a SAS token allowing only `permissions` (`rl`: read, list). */
function withSas(container: ContainerClient, permissions: string): ResolvedEndpointT {
  const sasToken = generateBlobSASQueryParameters(
    {
      containerName: container.containerName,
      permissions: ContainerSASPermissions.parse(permissions),
      expiresOn: new Date(Date.now() + 3_600_000),
    },
    new StorageSharedKeyCredential(DEV_ACCOUNT, DEV_KEY),
  ).toString();
  return {
    type: 'azure-blob',
    linkedService: 'lake',
    properties: { accountUrl: azurite.accountUrl, sasToken, container: container.containerName },
    options: {},
  };
}

function ctx(): ConnectorContext {
  return { signal: new AbortController().signal, allowedRoots: [] };
}

async function staged(container: ContainerClient): Promise<string[]> {
  const names: string[] = [];
  for await (const blob of container.listBlobsFlat({ prefix: '.ferry-staging/' })) names.push(blob.name);
  return names;
}

describe('azure-blob connection test', () => {
  it('says what it listed and read, and what it wrote and removed', async () => {
    const container = await freshContainer();
    const name = JSON.stringify(container.containerName);
    assert.equal(
      await azureBlobSource.checkRead(withSas(container, 'rl'), ctx()),
      `listed container ${name} (1 blob seen) and read the properties of "in/a.csv"`,
    );
    assert.equal(
      await azureBlobSink.checkWrite(withSas(container, 'rcwdl'), ctx(), PROBE),
      `wrote and removed .ferry-staging/${PROBE} in container ${name}`,
    );
    assert.deepEqual(await staged(container), []);
  });

  it('refuses the write of a SAS token that may only list and read (store_auth, not retried)', async () => {
    const container = await freshContainer();
    const readOnly = withSas(container, 'rl');
    const err = await rejectsWith(
      azureBlobSink.checkWrite(readOnly, ctx(), PROBE),
      'store_auth',
      new RegExp(
        `^azure-blob "lake": writing is refused: the credentials were refused for blob "\\.ferry-staging/${PROBE}" in container "${container.containerName}" \\(AuthorizationPermissionMismatch\\) \\(test write\\)$`,
      ),
    );
    assert.equal(err.retryable, false);
    assert.match(err.hint ?? '', /give the SAS token the create and write permissions/);
    assert.deepEqual(await staged(container), []);
  });

  it('reports a wrong account key as refused credentials, not as a refused write', async () => {
    const container = await freshContainer();
    const wrongKey = Buffer.from('ferry check: not the account key').toString('base64');
    const err = await rejectsWith(
      azureBlobSink.checkWrite(
        {
          type: 'azure-blob',
          linkedService: 'lake',
          properties: {
            connectionString: azurite.connectionString(wrongKey),
            container: container.containerName,
          },
          options: {},
        },
        ctx(),
        PROBE,
      ),
      'store_auth',
      /^azure-blob "lake": the credentials were refused for blob .* \(test write\)$/,
    );
    assert.match(err.hint ?? '', /^check the linked service's connection string, account key or SAS token/);
  });

  it('says the probe is left, and how to remove it, when the token may not delete', async () => {
    const container = await freshContainer();
    const err = await rejectsWith(
      azureBlobSink.checkWrite(withSas(container, 'rcwl'), ctx(), PROBE),
      'store_auth',
      /^azure-blob "lake": the credentials were refused for blob .* \(test write, removing the probe\)$/,
    );
    assert.equal(
      err.hint,
      `delete .ferry-staging/${PROBE} in container "${container.containerName}" by hand; the credentials need the delete permission too`,
    );
    assert.deepEqual(await staged(container), [`.ferry-staging/${PROBE}`]);
  });
});

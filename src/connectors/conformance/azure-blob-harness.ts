/**
 * The Azure Blob store for the conformance suite: one Azurite for the whole file, a container per
 * place with the source under `src/` and the sink under `dst/`, read back through a client of its own.
 */
import { BlobServiceClient, type ContainerClient } from '@azure/storage-blob';
import {
  DEV_ACCOUNT,
  DEV_KEY,
  connectionStringFor,
  startAzurite,
  type Azurite,
} from '../../../test/helpers/azurite.ts';
import type { ResolvedEndpointT } from '../../protocol/task.ts';
import { azureBlobSink, azureBlobSource } from '../azure-blob/azure-blob-connector.ts';
import { closedPort } from './closed-port.ts';
import type { ConformanceHarness, ConformancePlace, Dataset, StoredFile } from './conformance-harness.ts';

/** A well-formed account key that is not the emulator's. */
const WRONG_KEY = Buffer.from('ferry conformance: not the account key').toString('base64');

export function azureBlobHarness(): ConformanceHarness {
  let azurite: Azurite | undefined;
  let service: BlobServiceClient | undefined;
  let places = 0;

  const running = (): { azurite: Azurite; service: BlobServiceClient } => {
    if (!azurite || !service) throw new Error('azurite is not started');
    return { azurite, service };
  };
  const endpoint = (
    container: string,
    prefix: string,
    linkedService: string,
    properties: Record<string, unknown> = { connectionString: running().azurite.connectionString() },
  ): ResolvedEndpointT => ({
    type: 'azure-blob',
    linkedService,
    properties: { ...properties, container },
    options: { prefix },
  });
  /** The same broken properties as a source and as a sink. */
  const both = (container: string, properties: Record<string, unknown>) => ({
    source: endpoint(container, 'src', 'lake', properties),
    sink: endpoint(container, 'dst', 'out', properties),
  });

  return {
    type: 'azure-blob',
    kind: 'files',
    source: azureBlobSource,
    sink: azureBlobSink,
    splitOptions: { filesPerTask: 1 },
    limits: {
      leftovers:
        'abort() makes no request by design: uncommitted blocks stay in the store, invisible to readers, ' +
        "until the service discards them (at the blob's next commit, or after a week)",
    },
    broken: [
      {
        failure: 'bad_configuration',
        what: 'an account URL without a key or SAS token',
        endpoints: async () => ({
          ...both('any', { accountUrl: running().azurite.accountUrl }),
          mentions: ['connectionString'],
          secrets: [],
        }),
      },
      {
        failure: 'unreachable',
        what: 'nothing listening at the account URL',
        endpoints: async () => ({
          ...both('far', {
            connectionString: connectionStringFor(`http://127.0.0.1:${await closedPort()}/${DEV_ACCOUNT}`),
          }),
          mentions: ['container "far"'],
          secrets: [DEV_KEY],
        }),
      },
      {
        failure: 'wrong_credentials',
        what: 'a wrong account key',
        endpoints: async () => {
          const container = await newContainer(running().service, ++places);
          return {
            ...both(container.containerName, {
              connectionString: connectionStringFor(running().azurite.accountUrl, WRONG_KEY),
            }),
            mentions: [`container "${container.containerName}"`],
            secrets: [WRONG_KEY],
          };
        },
      },
      {
        failure: 'missing_object',
        what: 'a container that does not exist',
        endpoints: async () => ({
          ...both('no-such-container', { connectionString: running().azurite.connectionString() }),
          mentions: ['container "no-such-container"'],
          secrets: [DEV_KEY],
        }),
      },
    ],

    async start() {
      azurite = await startAzurite();
      service = BlobServiceClient.fromConnectionString(azurite.connectionString());
    },

    async stop() {
      await azurite?.stop();
    },

    allowedRoots: () => [],

    addressedTo: (port) =>
      both('silent', { connectionString: connectionStringFor(`http://127.0.0.1:${port}/${DEV_ACCOUNT}`) }),

    async place(): Promise<ConformancePlace> {
      const container = await newContainer(running().service, ++places);
      let seeded: string[] = [];
      return {
        source: endpoint(container.containerName, 'src', 'lake'),
        sink: endpoint(container.containerName, 'dst', 'out'),
        sourceName: container.containerName,
        secrets: [DEV_KEY],
        async seed(data: Dataset) {
          if (data.kind !== 'files') throw new Error('azure-blob stores files');
          for (const file of data.files) {
            await container.getBlockBlobClient(`src/${file.name}`).upload(file.data, file.data.length);
          }
          seeded = data.files.map((f) => f.name);
        },
        async unseed() {
          for (const name of seeded) await container.deleteBlob(`src/${name}`);
        },
        async visible() {
          const files: StoredFile[] = [];
          for await (const blob of container.listBlobsFlat({ prefix: 'dst/' })) {
            const data = await container.getBlobClient(blob.name).downloadToBuffer();
            files.push({ name: blob.name.slice('dst/'.length), data });
          }
          return { kind: 'files', files };
        },
        async probeLeftovers() {
          const names: string[] = [];
          for await (const blob of container.listBlobsFlat({ prefix: '.ferry-staging/' }))
            names.push(blob.name);
          return names.sort();
        },
        leftovers: async () => {
          throw new Error('unused: see limits.leftovers');
        },
      };
    },
  };
}

async function newContainer(service: BlobServiceClient, n: number): Promise<ContainerClient> {
  const container = service.getContainerClient(`conformance-${process.pid}-${n}`);
  await container.create();
  return container;
}

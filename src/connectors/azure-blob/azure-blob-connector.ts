/**
 * The Azure Blob store: blobs in one container of a storage account. A source plans blobs below a
 * prefix into FilePartitions and streams them as-is; a sink stages uncommitted blocks and publishes
 * each blob by committing its block list.
 */
import type { SinkConnector, SourceConnector } from '../connector.ts';
import { checkAzureBlobRead, checkAzureBlobWrite } from './azure-blob-check.ts';
import { planAzureBlob } from './azure-blob-planner.ts';
import { readAzureBlob } from './azure-blob-reader.ts';
import { openAzureBlobWriter } from './azure-blob-writer.ts';

export const azureBlobSource: SourceConnector = {
  plan: async (source, ctx) => ({ partitions: await planAzureBlob(source, ctx) }),
  read: readAzureBlob,
  checkRead: checkAzureBlobRead,
};

export const azureBlobSink: SinkConnector = {
  accepts: 'files',
  open: openAzureBlobWriter,
  checkWrite: checkAzureBlobWrite,
};

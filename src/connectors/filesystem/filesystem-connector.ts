/**
 * The filesystem store: folders on the node's own disks (or mounts), limited to --allow-path roots.
 * A source plans files into FilePartitions and streams them as-is; a sink stages and renames.
 */
import type { SinkConnector, SourceConnector } from '../connector.ts';
import { checkFilesystemRead, checkFilesystemWrite } from './filesystem-check.ts';
import { planFilesystem } from './filesystem-planner.ts';
import { readFilesystem } from './filesystem-reader.ts';
import { openFilesystemWriter } from './filesystem-writer.ts';

export const filesystemSource: SourceConnector = {
  plan: async (source, ctx) => ({ partitions: await planFilesystem(source, ctx) }),
  read: readFilesystem,
  checkRead: checkFilesystemRead,
};

export const filesystemSink: SinkConnector = {
  accepts: 'files',
  open: openFilesystemWriter,
  checkWrite: checkFilesystemWrite,
};

/**
 * The S3 store: a bucket on AWS or an S3-compatible store (MinIO, R2, ...). A source plans objects
 * under a prefix into FilePartitions and streams them as-is; a sink publishes each object with a
 * multipart upload completed only at commit.
 */
import type { SinkConnector, SourceConnector } from '../connector.ts';
import { checkS3Read, checkS3Write } from './s3-check.ts';
import { planS3 } from './s3-planner.ts';
import { readS3 } from './s3-reader.ts';
import { openS3Writer } from './s3-writer.ts';

export const s3Source: SourceConnector = {
  plan: async (source, ctx) => ({ partitions: await planS3(source, ctx) }),
  read: readS3,
  checkRead: checkS3Read,
};

export const s3Sink: SinkConnector = {
  accepts: 'files',
  open: openS3Writer,
  checkWrite: checkS3Write,
};

/** Which connector serves which store type. The only place the node names connectors. */
import { azureBlobSink, azureBlobSource } from '../connectors/azure-blob/azure-blob-connector.ts';
import type { SinkConnector, SourceConnector } from '../connectors/connector.ts';
import { filesystemSink, filesystemSource } from '../connectors/filesystem/filesystem-connector.ts';
import { mysqlSource } from '../connectors/mysql/mysql-connector.ts';
import { postgresSource } from '../connectors/postgres/postgres-connector.ts';
import { s3Sink, s3Source } from '../connectors/s3/s3-connector.ts';
import { FerryError } from '../common/errors.ts';

const SOURCES: Record<string, SourceConnector> = {
  filesystem: filesystemSource,
  postgres: postgresSource,
  mysql: mysqlSource,
  s3: s3Source,
  'azure-blob': azureBlobSource,
};
const SINKS: Record<string, SinkConnector> = {
  filesystem: filesystemSink,
  s3: s3Sink,
  'azure-blob': azureBlobSink,
};

export function sourceFor(type: string): SourceConnector {
  const c = SOURCES[type];
  if (!c) throw new FerryError('bad_request', `this node cannot read from ${type} stores`);
  return c;
}

export function sinkFor(type: string): SinkConnector {
  const c = SINKS[type];
  if (!c) throw new FerryError('bad_request', `this node cannot write to ${type} stores`);
  return c;
}

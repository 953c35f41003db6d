/**
 * Which connector serves which store type. The only place the node names connectors.
 *
 * Connectors load on first use: each store's client library costs 10-35 MiB of memory once
 * imported (the Azure and AWS SDKs, mysql2), and a node that only ever copies files
 * or PostgreSQL tables should not carry them all. Cached after the first import.
 */
import type { SinkConnector, SourceConnector } from '../connectors/connector.ts';
import { FerryError } from '../common/errors.ts';

interface StoreModule {
  source: SourceConnector;
  sink: SinkConnector;
}

const LOADERS: Record<string, () => Promise<StoreModule>> = {
  filesystem: async () => {
    const m = await import('../connectors/filesystem/filesystem-connector.ts');
    return { source: m.filesystemSource, sink: m.filesystemSink };
  },
  postgres: async () => {
    const m = await import('../connectors/postgres/postgres-connector.ts');
    return { source: m.postgresSource, sink: m.postgresSink };
  },
  mysql: async () => {
    const m = await import('../connectors/mysql/mysql-connector.ts');
    return { source: m.mysqlSource, sink: m.mysqlSink };
  },
  s3: async () => {
    const m = await import('../connectors/s3/s3-connector.ts');
    return { source: m.s3Source, sink: m.s3Sink };
  },
  'azure-blob': async () => {
    const m = await import('../connectors/azure-blob/azure-blob-connector.ts');
    return { source: m.azureBlobSource, sink: m.azureBlobSink };
  },
};

const loaded = new Map<string, Promise<StoreModule>>();

async function storeModule(type: string, role: 'read from' | 'write to'): Promise<StoreModule> {
  const load = LOADERS[type];
  if (!load) throw new FerryError('bad_request', `this node cannot ${role} ${type} stores`);
  let module = loaded.get(type);
  if (!module) {
    module = load();
    loaded.set(type, module);
    // A failed import (a broken install) is reported to this task and tried again by the next.
    module.catch(() => loaded.delete(type));
  }
  return module;
}

export async function sourceFor(type: string): Promise<SourceConnector> {
  return (await storeModule(type, 'read from')).source;
}

export async function sinkFor(type: string): Promise<SinkConnector> {
  return (await storeModule(type, 'write to')).sink;
}

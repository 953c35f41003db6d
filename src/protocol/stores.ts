/**
 * The per-store contract: what a linked service of each type holds, and what a copy activity's source
 * and sink options look like for it. The service validates pipelines against these; nodes execute them.
 * Adding a store = a new entry here + a folder in src/connectors.
 */
import { Type, type Static, type TSchema } from 'typebox';

const Name = Type.String({ minLength: 1, maxLength: 128, pattern: '^[A-Za-z0-9][A-Za-z0-9_.-]*$' });
export { Name as NameSchema };

// ---- linked service properties ---------------------------------------------------------------

export const FilesystemProperties = Type.Object(
  {
    /** Absolute folder on the nodes; must lie under one of every node's --allow-path roots. */
    root: Type.String({ minLength: 1, pattern: '^/' }),
  },
  { additionalProperties: false },
);

export const PostgresProperties = Type.Object(
  {
    host: Type.String({ minLength: 1 }),
    port: Type.Optional(Type.Integer({ minimum: 1, maximum: 65535 })),
    database: Type.String({ minLength: 1 }),
    user: Type.String({ minLength: 1 }),
    /** A secret: encrypted at rest by the service, never returned by the API. */
    password: Type.Optional(Type.String()),
    ssl: Type.Optional(Type.Boolean()),
  },
  { additionalProperties: false },
);

export const MysqlProperties = Type.Object(
  {
    host: Type.String({ minLength: 1 }),
    /** Default 3306. */
    port: Type.Optional(Type.Integer({ minimum: 1, maximum: 65535 })),
    database: Type.String({ minLength: 1 }),
    user: Type.String({ minLength: 1 }),
    /** A secret: encrypted at rest by the service, never returned by the API. */
    password: Type.Optional(Type.String()),
    /** TLS with the server certificate verified against the system's CAs. */
    ssl: Type.Optional(Type.Boolean()),
  },
  { additionalProperties: false },
);

export const AzureBlobProperties = Type.Object(
  {
    /** A secret. Either this, or accountUrl with accountKey (and accountName) or with sasToken. */
    connectionString: Type.Optional(Type.String({ minLength: 1 })),
    /** `https://<account>.blob.core.windows.net`, or an emulator's `http://host:port/<account>`. */
    accountUrl: Type.Optional(Type.String({ minLength: 1, pattern: '^https?://' })),
    accountName: Type.Optional(Type.String({ minLength: 1 })),
    /** A secret. */
    accountKey: Type.Optional(Type.String({ minLength: 1 })),
    /** A secret: a SAS token (without the leading `?`) used with accountUrl instead of a key. */
    sasToken: Type.Optional(Type.String({ minLength: 1 })),
    container: Type.String({ minLength: 3, maxLength: 63, pattern: '^[a-z0-9][a-z0-9-]*[a-z0-9]$' }),
  },
  { additionalProperties: false },
);

export const S3Properties = Type.Object(
  {
    /** For S3-compatible stores (MinIO, R2, ...): their URL; default AWS for the region. */
    endpoint: Type.Optional(Type.String({ minLength: 1, pattern: '^https?://' })),
    region: Type.String({ minLength: 1 }),
    bucket: Type.String({ minLength: 1, maxLength: 255 }),
    accessKeyId: Type.String({ minLength: 1 }),
    /** A secret. */
    secretAccessKey: Type.String({ minLength: 1 }),
    /** Address buckets as `<endpoint>/<bucket>` rather than `<bucket>.<endpoint>` (most emulators). */
    forcePathStyle: Type.Optional(Type.Boolean()),
  },
  { additionalProperties: false },
);

/** Property names that hold secrets, per store type: redacted on every way out of the service. */
export const SECRET_PROPERTIES: Record<StoreType, readonly string[]> = {
  filesystem: [],
  postgres: ['password'],
  mysql: ['password'],
  s3: ['secretAccessKey'],
  'azure-blob': ['connectionString', 'accountKey', 'sasToken'],
};

// ---- copy activity options ------------------------------------------------------------------

export const FilesystemSource = Type.Object(
  {
    linkedService: Name,
    /** Folder under the linked service root ('' or '.' = the root itself). */
    path: Type.Optional(Type.String()),
    /** Glob relative to `path`; default every file below it. */
    glob: Type.Optional(Type.String({ minLength: 1 })),
    /** Split the file set into tasks of at most this many files (default 64) ... */
    filesPerTask: Type.Optional(Type.Integer({ minimum: 1, maximum: 100000 })),
    /** ... and at most this many bytes (default 256 MiB; a larger single file is one task). */
    bytesPerTask: Type.Optional(Type.Integer({ minimum: 1 })),
  },
  { additionalProperties: false },
);

export const FilesystemSink = Type.Object(
  {
    linkedService: Name,
    /** Folder under the linked service root; created if missing. */
    path: Type.Optional(Type.String()),
    /** Output format when the source is a table: csv (default). Files are copied as-is. */
    format: Type.Optional(Type.Literal('csv')),
  },
  { additionalProperties: false },
);

export const PostgresSource = Type.Object(
  {
    linkedService: Name,
    /** `schema.table` or `table`. */
    table: Type.String({ minLength: 1 }),
    /** Columns to copy (default all). */
    columns: Type.Optional(Type.Array(Type.String({ minLength: 1 }), { minItems: 1 })),
    /** A numeric column to split the table into ranges, one task each. */
    partitionColumn: Type.Optional(Type.String({ minLength: 1 })),
    /** How many ranges (default 1 without partitionColumn, else 8). */
    partitions: Type.Optional(Type.Integer({ minimum: 1, maximum: 10000 })),
  },
  { additionalProperties: false },
);

export const MysqlSource = Type.Object(
  {
    linkedService: Name,
    /** `database.table` or `table` (in the linked service's database). */
    table: Type.String({ minLength: 1 }),
    /** Columns to copy (default all). */
    columns: Type.Optional(Type.Array(Type.String({ minLength: 1 }), { minItems: 1 })),
    /** An integer, decimal, floating point, date or datetime column to split the table into ranges. */
    partitionColumn: Type.Optional(Type.String({ minLength: 1 })),
    /** How many ranges (default 1 without partitionColumn, else 8). */
    partitions: Type.Optional(Type.Integer({ minimum: 1, maximum: 10000 })),
  },
  { additionalProperties: false },
);

/** Source options of an object store (Azure Blob, S3): names are relative to `prefix`. */
const ObjectStoreSource = Type.Object(
  {
    linkedService: Name,
    /** Folder-like name prefix in the container or bucket ('' = all of it). */
    prefix: Type.Optional(Type.String()),
    /** Glob relative to `prefix`; default every object below it. */
    glob: Type.Optional(Type.String({ minLength: 1 })),
    /** Split the object set into tasks of at most this many objects (default 64) ... */
    filesPerTask: Type.Optional(Type.Integer({ minimum: 1, maximum: 100000 })),
    /** ... and at most this many bytes (default 256 MiB; a larger single object is one task). */
    bytesPerTask: Type.Optional(Type.Integer({ minimum: 1 })),
  },
  { additionalProperties: false },
);

/** Sink options of an object store: objects are published under `prefix`. */
const ObjectStoreSink = Type.Object(
  {
    linkedService: Name,
    /** Folder-like name prefix the objects are published under ('' = the root). */
    prefix: Type.Optional(Type.String()),
  },
  { additionalProperties: false },
);

export const AzureBlobSource = ObjectStoreSource;
export const AzureBlobSink = ObjectStoreSink;
export const S3Source = ObjectStoreSource;
export const S3Sink = ObjectStoreSink;

export type FilesystemSourceOptions = Static<typeof FilesystemSource>;
export type FilesystemSinkOptions = Static<typeof FilesystemSink>;
export type PostgresSourceOptions = Static<typeof PostgresSource>;
export type FilesystemLinkedProperties = Static<typeof FilesystemProperties>;
export type PostgresLinkedProperties = Static<typeof PostgresProperties>;
export type MysqlSourceOptions = Static<typeof MysqlSource>;
export type MysqlLinkedProperties = Static<typeof MysqlProperties>;
export type S3SourceOptions = Static<typeof S3Source>;
export type S3SinkOptions = Static<typeof S3Sink>;
export type S3LinkedProperties = Static<typeof S3Properties>;
export type AzureBlobSourceOptions = Static<typeof AzureBlobSource>;
export type AzureBlobSinkOptions = Static<typeof AzureBlobSink>;
export type AzureBlobLinkedProperties = Static<typeof AzureBlobProperties>;

export type StoreType = 'filesystem' | 'postgres' | 'mysql' | 's3' | 'azure-blob';
export const STORE_TYPES: readonly StoreType[] = ['filesystem', 'postgres', 'mysql', 's3', 'azure-blob'];

export interface StoreContract {
  properties: TSchema;
  /** Absent when the store cannot be a source (yet). */
  source?: TSchema;
  sink?: TSchema;
}

export const STORES: Record<StoreType, StoreContract> = {
  filesystem: { properties: FilesystemProperties, source: FilesystemSource, sink: FilesystemSink },
  postgres: { properties: PostgresProperties, source: PostgresSource },
  mysql: { properties: MysqlProperties, source: MysqlSource },
  s3: { properties: S3Properties, source: S3Source, sink: S3Sink },
  'azure-blob': { properties: AzureBlobProperties, source: AzureBlobSource, sink: AzureBlobSink },
};

export function isStoreType(value: unknown): value is StoreType {
  return typeof value === 'string' && (STORE_TYPES as readonly string[]).includes(value);
}

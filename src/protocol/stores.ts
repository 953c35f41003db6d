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

/** How CSV is written (sinks) or read (sources); defaults are canonical CSV (src/tables/table-columns.ts). */
export const CsvOptions = Type.Object(
  {
    /** A first row of column names (default true). */
    header: Type.Optional(Type.Boolean()),
    /** One character between fields (default `,`). */
    delimiter: Type.Optional(Type.String({ minLength: 1, maxLength: 1 })),
    /** One character around fields that need quoting; doubled inside them (default `"`). */
    quote: Type.Optional(Type.String({ minLength: 1, maxLength: 1 })),
    /** Text written for NULL, unquoted (default empty); an empty string is always written quoted. */
    nullValue: Type.Optional(Type.String()),
    /** Character encoding of the file (default utf8). */
    encoding: Type.Optional(
      Type.Union([Type.Literal('utf8'), Type.Literal('utf16le'), Type.Literal('latin1')]),
    ),
  },
  { additionalProperties: false },
);

/**
 * On a files sink: how a table is written (files are always copied as-is). On a files source: read
 * the files as a table in this format (absent = copy the files as-is).
 */
const FormatFields = {
  /** csv (default for tables), jsonl (one JSON object per row), or parquet (schema from the columns' types). */
  format: Type.Optional(Type.Union([Type.Literal('csv'), Type.Literal('jsonl'), Type.Literal('parquet')])),
  /** gzip the encoded table (`.csv.gz`, `.jsonl.gz`); sources: gunzip (also when a name ends `.gz`). */
  compression: Type.Optional(Type.Union([Type.Literal('none'), Type.Literal('gzip')])),
  csv: Type.Optional(CsvOptions),
};
export const FileFormatOptions = Type.Object(FormatFields);

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
    ...FormatFields,
  },
  { additionalProperties: false },
);

export const FilesystemSink = Type.Object(
  {
    linkedService: Name,
    /** Folder under the linked service root; created if missing. */
    path: Type.Optional(Type.String()),
    ...FormatFields,
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
    /**
     * Incremental copy: a column that only grows (an id, an updated-at time). Each run copies the
     * rows above the highest value the last successful run copied, and remembers the new highest.
     */
    watermarkColumn: Type.Optional(Type.String({ minLength: 1 })),
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
    /**
     * Incremental copy: a column that only grows (an id, an updated-at time). Each run copies the
     * rows above the highest value the last successful run copied, and remembers the new highest.
     */
    watermarkColumn: Type.Optional(Type.String({ minLength: 1 })),
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
    ...FormatFields,
  },
  { additionalProperties: false },
);

/** Sink options of an object store: objects are published under `prefix`. */
const ObjectStoreSink = Type.Object(
  {
    linkedService: Name,
    /** Folder-like name prefix the objects are published under ('' = the root). */
    prefix: Type.Optional(Type.String()),
    ...FormatFields,
  },
  { additionalProperties: false },
);

/**
 * A database table as a sink. Every task's rows are committed in one transaction, together with a
 * row in the ledger table that names the task, so a retried task never loads its rows twice.
 */
const TableSinkFields = {
  linkedService: Name,
  /**
   * append (default): add the rows to an existing table. create: create the table from the source's
   * columns if it does not exist, then append. overwrite: load into a staging table, then replace
   * the table's rows with it in one transaction once every task has succeeded.
   */
  mode: Type.Optional(
    Type.Union([Type.Literal('append'), Type.Literal('create'), Type.Literal('overwrite')]),
  ),
  /** Columns to load, in the source's order (default: the source's column names). */
  columns: Type.Optional(Type.Array(Type.String({ minLength: 1 }), { minItems: 1 })),
  /** Where task commits are recorded (default `ferry_ledger`, in the table's schema/database). */
  ledgerTable: Type.Optional(Type.String({ minLength: 1 })),
};

export const PostgresSink = Type.Object(
  {
    ...TableSinkFields,
    /** `schema.table` or `table`. */
    table: Type.String({ minLength: 1 }),
  },
  { additionalProperties: false },
);

export const MysqlSink = Type.Object(
  {
    ...TableSinkFields,
    /** `database.table` or `table` (in the linked service's database). */
    table: Type.String({ minLength: 1 }),
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
export type PostgresSinkOptions = Static<typeof PostgresSink>;
export type MysqlSinkOptions = Static<typeof MysqlSink>;
export type CsvOptionsT = Static<typeof CsvOptions>;
export type FileFormatOptionsT = Static<typeof FileFormatOptions>;
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
  /** files: objects as bytes (a table only through a format); table: rows with typed columns. */
  kind: 'files' | 'table';
  properties: TSchema;
  /** Absent when the store cannot be a source (yet). */
  source?: TSchema;
  sink?: TSchema;
}

export const STORES: Record<StoreType, StoreContract> = {
  filesystem: {
    kind: 'files',
    properties: FilesystemProperties,
    source: FilesystemSource,
    sink: FilesystemSink,
  },
  postgres: { kind: 'table', properties: PostgresProperties, source: PostgresSource, sink: PostgresSink },
  mysql: { kind: 'table', properties: MysqlProperties, source: MysqlSource, sink: MysqlSink },
  s3: { kind: 'files', properties: S3Properties, source: S3Source, sink: S3Sink },
  'azure-blob': {
    kind: 'files',
    properties: AzureBlobProperties,
    source: AzureBlobSource,
    sink: AzureBlobSink,
  },
};

export function isStoreType(value: unknown): value is StoreType {
  return typeof value === 'string' && (STORE_TYPES as readonly string[]).includes(value);
}

/** Where a files sink stages its unfinished attempts, inside its destination folder (or prefix). */
export const STAGING_FOLDER = '.ferry-staging';

/** The fields that name a place in a store: folders, prefixes and globs. */
const PATH_FIELDS: Record<'properties' | 'source' | 'sink', readonly string[]> = {
  properties: ['root'],
  source: ['path', 'prefix', 'glob'],
  sink: ['path', 'prefix'],
};

/**
 * What the schemas cannot say clearly about paths, checked when a linked service or pipeline is
 * applied (the nodes check again when they run): no field naming a place may hold a NUL byte, and no
 * folder or prefix may lie inside a `.ferry-staging` folder, where files sinks keep their unfinished
 * attempts (a sink there would publish into another sink's staging; a source would read it). Returns
 * `field: why`, or undefined when the value is fine. `value` has already passed its schema.
 */
export function pathProblem(
  role: 'properties' | 'source' | 'sink',
  value: Readonly<Record<string, unknown>>,
): string | undefined {
  for (const field of PATH_FIELDS[role]) {
    const v = value[field];
    if (typeof v !== 'string') continue;
    if (v.includes('\0')) return `${field}: ${JSON.stringify(v)} holds a NUL byte`;
    if (field === 'glob') continue;
    const segments = v.split(/[/\\]+/);
    // Resolved as a path would be, so `a/../.ferry-staging/x` is caught like `.ferry-staging/x`.
    const resolved: string[] = [];
    for (const s of segments) {
      if (s === '..') resolved.pop();
      else if (s !== '.' && s !== '') resolved.push(s);
    }
    if (resolved.includes(STAGING_FOLDER)) {
      return role === 'sink'
        ? `${field}: ${v} is inside a ${STAGING_FOLDER} folder, where files sinks stage unfinished attempts; publish to another folder`
        : `${field}: ${v} is inside a ${STAGING_FOLDER} folder, where files sinks stage unfinished attempts`;
    }
  }
  return undefined;
}

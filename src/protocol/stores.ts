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

/** Property names that hold secrets, per store type: redacted on every way out of the service. */
export const SECRET_PROPERTIES: Record<StoreType, readonly string[]> = {
  filesystem: [],
  postgres: ['password'],
  mysql: ['password'],
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

export type FilesystemSourceOptions = Static<typeof FilesystemSource>;
export type FilesystemSinkOptions = Static<typeof FilesystemSink>;
export type PostgresSourceOptions = Static<typeof PostgresSource>;
export type FilesystemLinkedProperties = Static<typeof FilesystemProperties>;
export type PostgresLinkedProperties = Static<typeof PostgresProperties>;
export type MysqlSourceOptions = Static<typeof MysqlSource>;
export type MysqlLinkedProperties = Static<typeof MysqlProperties>;

export type StoreType = 'filesystem' | 'postgres' | 'mysql';
export const STORE_TYPES: readonly StoreType[] = ['filesystem', 'postgres', 'mysql'];

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
};

export function isStoreType(value: unknown): value is StoreType {
  return typeof value === 'string' && (STORE_TYPES as readonly string[]).includes(value);
}

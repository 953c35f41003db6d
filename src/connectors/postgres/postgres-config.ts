/**
 * Linked service properties, source and sink options for PostgreSQL, compiled once, and the one
 * place where names and values are quoted into SQL.
 *
 * Names are taken literally and always quoted: `public.Orders` reads the table "public"."Orders",
 * case and all, so what the pipeline says is exactly what is read. Input that would need more than
 * quoting (a double quote, a control character, a third dotted part, stray spaces) is refused rather
 * than guessed at.
 */
import { escapeLiteral, type ClientConfig } from 'pg';
import { FerryError } from '../../common/errors.ts';
import { PostgresProperties, PostgresSink, PostgresSource } from '../../protocol/stores.ts';
import type { ResolvedEndpointT } from '../../protocol/task.ts';
import { validator, type Validator } from '../../protocol/validate.ts';
import { pgSocket } from './copy-out.ts';
import { postgresMessage, withStoreName } from './postgres-errors.ts';

/** A host that does not answer is reported after this long instead of the OS's minutes. */
const CONNECT_TIMEOUT_MS = 10_000;
const DEFAULT_PORT = 5432;
const DEFAULT_PARTITIONS_WITH_COLUMN = 8;

/** Where to connect, and what error messages may say about it (never the password). */
export interface PostgresTarget {
  linkedService: string;
  /** `host:port`, for messages. */
  address: string;
  /** Kept only so messages can be scrubbed of it. */
  password: string | undefined;
  client: ClientConfig;
}

export interface CompiledPostgresSource {
  /** As written in the pipeline, for messages. */
  table: string;
  /** `"schema"."table"` */
  tableSql: string;
  /** Requested column names, undefined = all. */
  columns: string[] | undefined;
  /** `"a", "b"` or `*`. */
  columnsSql: string;
  partitionColumn: string | undefined;
  partitions: number;
  /** Incremental copy: the column whose window each run reads. */
  watermarkColumn: string | undefined;
}

/** A table name as written: `schema.table`, or `table` found through the search_path. */
export interface QualifiedName {
  schema: string | undefined;
  name: string;
}

export type PostgresSinkMode = 'append' | 'create' | 'overwrite';

export interface CompiledPostgresSink {
  /** As written in the pipeline, for messages. */
  table: string;
  target: QualifiedName;
  mode: PostgresSinkMode;
  /** Target column names to load, in the source's order; undefined = the source's names. */
  columns: string[] | undefined;
  /** Unqualified = in the target table's schema. */
  ledger: QualifiedName;
}

const DEFAULT_LEDGER = 'ferry_ledger';

let validators:
  | {
      properties: Validator<typeof PostgresProperties>;
      source: Validator<typeof PostgresSource>;
      sink: Validator<typeof PostgresSink>;
    }
  | undefined;

function schemas(): NonNullable<typeof validators> {
  validators ??= {
    properties: validator(PostgresProperties),
    source: validator(PostgresSource),
    sink: validator(PostgresSink),
  };
  return validators;
}

export function compilePostgresTarget(endpoint: ResolvedEndpointT): PostgresTarget {
  const p = schemas().properties.parse(
    endpoint.properties,
    `postgres linked service "${endpoint.linkedService}"`,
  );
  const port = p.port ?? DEFAULT_PORT;
  return {
    linkedService: endpoint.linkedService,
    address: `${p.host}:${port}`,
    password: p.password,
    client: {
      host: p.host,
      port,
      database: p.database,
      user: p.user,
      ...(p.password === undefined ? {} : { password: p.password }),
      // Without TLS, reads go into pool buffers (copy-out.ts); TLS reads its socket itself.
      ...(p.ssl === undefined ? { stream: pgSocket } : { ssl: p.ssl }),
      connectionTimeoutMillis: CONNECT_TIMEOUT_MS,
      keepAlive: true,
      application_name: 'ferry',
    },
  };
}

export function compilePostgresSource(endpoint: ResolvedEndpointT): CompiledPostgresSource {
  const ls = endpoint.linkedService;
  const o = schemas().source.parse({ linkedService: ls, ...endpoint.options }, `postgres source "${ls}"`);
  if (o.partitionColumn === undefined && o.partitions !== undefined && o.partitions > 1) {
    throw new FerryError(
      'bad_request',
      postgresMessage(ls, `partitions: ${o.partitions} needs a partitionColumn to split on`),
    );
  }
  try {
    // Quoted here only to refuse odd names before any connection is made; queries quote it again.
    if (o.partitionColumn !== undefined) quoteIdentifier(o.partitionColumn);
    if (o.watermarkColumn !== undefined) quoteIdentifier(o.watermarkColumn);
    return {
      table: o.table,
      tableSql: quoteQualifiedName(o.table),
      columns: o.columns,
      columnsSql: o.columns === undefined ? '*' : o.columns.map(quoteIdentifier).join(', '),
      partitionColumn: o.partitionColumn,
      partitions: o.partitions ?? (o.partitionColumn === undefined ? 1 : DEFAULT_PARTITIONS_WITH_COLUMN),
      watermarkColumn: o.watermarkColumn,
    };
  } catch (err) {
    if (err instanceof FerryError) throw new FerryError(err.code, postgresMessage(ls, err.message));
    throw err;
  }
}

export function compilePostgresSink(endpoint: ResolvedEndpointT): CompiledPostgresSink {
  const ls = endpoint.linkedService;
  const o = schemas().sink.parse({ linkedService: ls, ...endpoint.options }, `postgres sink "${ls}"`);
  return withStoreName(ls, () => {
    o.columns?.forEach(quoteIdentifier);
    const duplicate = o.columns?.find((c, i) => o.columns?.indexOf(c) !== i);
    if (duplicate !== undefined) throw new FerryError('bad_request', `column "${duplicate}" is listed twice`);
    return {
      table: o.table,
      target: splitQualifiedName(o.table),
      mode: o.mode ?? 'append',
      columns: o.columns,
      ledger: splitQualifiedName(o.ledgerTable ?? DEFAULT_LEDGER),
    };
  });
}

/** `schema.table` -> both parts; `table` -> no schema. Refuses what quoteQualifiedName refuses. */
export function splitQualifiedName(name: string): QualifiedName {
  quoteQualifiedName(name);
  const [first, second] = name.split('.') as [string, string | undefined];
  return second === undefined ? { schema: undefined, name: first } : { schema: first, name: second };
}

// Control characters and double quotes would need escaping inside a quoted name; nobody names a
// table like that on purpose, so such input is treated as a mistake.
const ODD_NAME = /["\p{Cc}]/u;
const MAX_NAME_BYTES = 63;

/** `orders` -> `"orders"`. */
export function quoteIdentifier(name: string): string {
  if (name.length === 0) throw new FerryError('bad_request', 'a name is empty');
  if (ODD_NAME.test(name) || name.trim() !== name || Buffer.byteLength(name) > MAX_NAME_BYTES) {
    throw new FerryError('bad_request', `${JSON.stringify(name)} is not a plain PostgreSQL name`);
  }
  return `"${name}"`;
}

/** `schema.table` -> `"schema"."table"`; `table` -> `"table"` (found through the search_path). */
export function quoteQualifiedName(name: string): string {
  const parts = name.split('.');
  if (parts.length > 2 || parts.some((p) => p.length === 0)) {
    throw new FerryError('bad_request', `${JSON.stringify(name)} is not \`table\` or \`schema.table\``);
  }
  return parts.map(quoteIdentifier).join('.');
}

/** A value as an SQL string literal: `it's` -> `'it''s'` (E'...' when it holds a backslash). */
export function quoteLiteral(value: string): string {
  if (value.includes('\0')) throw new FerryError('bad_request', 'a value holds a NUL byte');
  return escapeLiteral(value);
}

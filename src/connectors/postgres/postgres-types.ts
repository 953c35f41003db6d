/**
 * PostgreSQL types and Ferry's logical column types (src/tables/table-columns.ts), both ways.
 *
 * Reading: every type maps to the logical type whose canonical text PostgreSQL already prints for
 * it. Types with no logical counterpart (interval, arrays, enums, ranges, inet, money, timetz...)
 * travel as text: their PostgreSQL text form, which PostgreSQL reads back.
 *
 * Creating a table (sink mode create, or a missing overwrite target): a column keeps its source's
 * own type (`nativeType`) when PostgreSQL knows that type and it means the same logical type, so a
 * PostgreSQL-to-PostgreSQL copy keeps `varchar(40)`, `numeric(12,2)`, `interval` or an enum that
 * exists on both sides. Anything else gets the logical type's PostgreSQL type: another store's
 * `datetime(6)` or `double` is not PostgreSQL's, and MySQL's `timestamp` or `float` are, but mean
 * something else (`timestamp` without zone, 8-byte float). `nativeTypeSql` makes that check.
 */
import { DatabaseError } from 'pg';
import { FerryError } from '../../common/errors.ts';
import type { ColumnType, TableColumn } from '../../tables/table-columns.ts';
import type { PostgresSession } from './postgres-client.ts';

/** By pg_type.typname; a missing name is text. */
const LOGICAL: Record<string, ColumnType> = {
  bool: 'boolean',
  int2: 'int16',
  int4: 'int32',
  int8: 'int64',
  float4: 'float32',
  float8: 'float64',
  numeric: 'decimal',
  bytea: 'binary',
  date: 'date',
  time: 'time',
  timestamp: 'timestamp',
  timestamptz: 'timestamptz',
  json: 'json',
  jsonb: 'json',
  uuid: 'uuid',
};

const SQL_TYPES: Record<ColumnType, string> = {
  boolean: 'boolean',
  int16: 'smallint',
  int32: 'integer',
  int64: 'bigint',
  float32: 'real',
  float64: 'double precision',
  decimal: 'numeric',
  text: 'text',
  binary: 'bytea',
  date: 'date',
  time: 'time',
  timestamp: 'timestamp',
  timestamptz: 'timestamptz',
  json: 'jsonb',
  uuid: 'uuid',
};

export function logicalType(typname: string): ColumnType {
  return LOGICAL[typname] ?? 'text';
}

/**
 * numeric's precision and scale from its type modifier (-1 = unconstrained). PostgreSQL 15 also
 * allows a negative scale or one above the precision (`numeric(2,-3)`); other stores and formats
 * have no such thing, so those columns are described as unconstrained, which holds their values.
 */
export function numericModifier(typmod: number): { precision: number; scale: number } | undefined {
  if (typmod < 4) return undefined;
  const packed = typmod - 4;
  const precision = (packed >> 16) & 0xffff;
  const scale = ((packed & 0x7ff) ^ 1024) - 1024;
  return scale < 0 || scale > precision ? undefined : { precision, scale };
}

/** The column's type from its logical type alone: `numeric(12,2)`, `bigint`, `jsonb`. */
export function logicalTypeSql(column: TableColumn): string {
  if (column.type === 'decimal' && column.precision !== undefined) {
    return `numeric(${column.precision},${column.scale ?? 0})`;
  }
  return SQL_TYPES[column.type];
}

// Only characters a type name can hold (`"my schema"."mood"[]`, `numeric(12,2)`, `character
// varying(40)`); the server parses what passes as a type name, so nothing else reaches the DDL.
const TYPE_NAME = /^[\p{L}\p{N}_ ."(),[\]]+$/u;

/**
 * The column's source type if PostgreSQL knows it and maps it to the same logical type, else
 * undefined. Runs one query per column outside any transaction: a name PostgreSQL cannot parse is
 * an error, which would abort a transaction.
 */
export async function nativeTypeSql(
  session: PostgresSession,
  column: TableColumn,
): Promise<string | undefined> {
  const native = column.nativeType;
  if (native === undefined || !TYPE_NAME.test(native) || native.includes('--')) return undefined;
  let rows: { typname: string | null }[];
  try {
    rows = await session.query<{ typname: string | null }>(
      `SELECT coalesce(b.typname, t.typname) AS typname
         FROM (SELECT to_regtype($1) AS oid) r
         LEFT JOIN pg_type t ON t.oid = r.oid
         LEFT JOIN pg_type b ON b.oid = t.typbasetype AND t.typtype = 'd'`,
      [native],
      'check type',
    );
  } catch (err) {
    // The server refused the name (a syntax error): not a PostgreSQL type. Anything else is real.
    if (err instanceof FerryError && err.cause instanceof DatabaseError) return undefined;
    throw err;
  }
  const typname = rows[0]?.typname;
  if (typname == null || logicalType(typname) !== column.type) return undefined;
  // A decimal of known precision must not become a different one.
  if (column.type === 'decimal' && column.precision !== undefined) return undefined;
  return native;
}

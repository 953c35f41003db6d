/**
 * What the catalog says about a table and its columns: whether the table exists, each column's
 * logical type (postgres-types.ts), and how a partition or watermark column of that type is split
 * and compared. One query answers all of it.
 */
import { FerryError } from '../../common/errors.ts';
import type { TableColumn } from '../../tables/table-columns.ts';
import type { PostgresSession } from './postgres-client.ts';
import type { CompiledPostgresSource } from './postgres-config.ts';
import { postgresMessage } from './postgres-errors.ts';
import { logicalType, numericModifier } from './postgres-types.ts';

/** How a partition column is split: integers exactly, numbers approximately, dates and times on the epoch. */
export type ColumnKind = 'integer' | 'number' | 'date' | 'timestamp';

export interface ColumnInfo {
  name: string;
  /** The type without modifiers, as SQL can cast to it: `bigint`, `numeric`, `timestamp with time zone`. */
  castType: string;
  /** undefined when the column cannot be a partition or watermark column. */
  kind: ColumnKind | undefined;
  /** The column as it travels (src/tables/table-columns.ts). */
  column: TableColumn;
}

const KINDS: Record<string, ColumnKind> = {
  int2: 'integer',
  int4: 'integer',
  int8: 'integer',
  numeric: 'number',
  float4: 'number',
  float8: 'number',
  date: 'date',
  timestamp: 'timestamp',
  timestamptz: 'timestamp',
};

/** Every column of the source table, by name, in table order. */
export type TableInfo = ReadonlyMap<string, ColumnInfo>;

interface AttributeRow {
  found: boolean;
  name: string | null;
  typname: string;
  typmod: number;
  cast_type: string;
  native_type: string;
  not_null: boolean;
}

export async function describeTable(
  session: PostgresSession,
  source: CompiledPostgresSource,
  linkedService: string,
  operation: string,
): Promise<TableInfo> {
  // to_regclass answers NULL for a missing table instead of failing, so the message can be ours.
  // A domain is described by its base type, with the domain's own modifier and NOT NULL.
  const rows = await session.query<AttributeRow>(
    `SELECT r.oid IS NOT NULL AS found, a.attname AS name,
            coalesce(b.typname, t.typname) AS typname,
            CASE WHEN t.typtype = 'd' THEN t.typtypmod ELSE a.atttypmod END AS typmod,
            format_type(a.atttypid, NULL) AS cast_type,
            format_type(a.atttypid, a.atttypmod) AS native_type,
            a.attnotnull OR coalesce(t.typnotnull, false) AS not_null
       FROM (SELECT to_regclass($1) AS oid) r
       LEFT JOIN pg_attribute a ON a.attrelid = r.oid AND a.attnum > 0 AND NOT a.attisdropped
       LEFT JOIN pg_type t ON t.oid = a.atttypid
       LEFT JOIN pg_type b ON t.typtype = 'd' AND b.oid = t.typbasetype
      ORDER BY a.attnum`,
    [source.tableSql],
    operation,
  );
  if (rows[0]?.found !== true) {
    throw new FerryError(
      'store_object_missing',
      postgresMessage(linkedService, `relation "${source.table}" does not exist (${operation})`),
    );
  }
  const table = new Map<string, ColumnInfo>();
  for (const row of rows) {
    if (row.name === null) continue; // a table without columns
    const type = logicalType(row.typname);
    const decimal = type === 'decimal' ? numericModifier(row.typmod) : undefined;
    table.set(row.name, {
      name: row.name,
      castType: row.cast_type,
      kind: KINDS[row.typname],
      column: {
        name: row.name,
        type,
        ...(decimal ?? {}),
        nullable: !row.not_null,
        nativeType: row.native_type,
      },
    });
  }
  return table;
}

/** The named columns, in the order asked; a missing one is store_object_missing. */
export function pickColumns(
  table: TableInfo,
  source: CompiledPostgresSource,
  names: readonly string[],
  linkedService: string,
  operation: string,
): ColumnInfo[] {
  return names.map((name) => {
    const info = table.get(name);
    if (!info) {
      throw new FerryError(
        'store_object_missing',
        postgresMessage(
          linkedService,
          `column "${name}" of relation "${source.table}" does not exist (${operation})`,
        ),
      );
    }
    return info;
  });
}

/** One named column; a missing one is store_object_missing. */
export function pickColumn(
  table: TableInfo,
  source: CompiledPostgresSource,
  name: string,
  linkedService: string,
  operation: string,
): ColumnInfo {
  const [info] = pickColumns(table, source, [name], linkedService, operation);
  return info!;
}

/** The columns the source copies: those asked for, else all of them. */
export function sourceColumns(
  table: TableInfo,
  source: CompiledPostgresSource,
  linkedService: string,
  operation: string,
): TableColumn[] {
  const infos =
    source.columns === undefined
      ? [...table.values()]
      : pickColumns(table, source, source.columns, linkedService, operation);
  return infos.map((i) => i.column);
}

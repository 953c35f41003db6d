/**
 * What information_schema says about a table: whether it exists, its columns in order with their
 * logical types (mysql-types.ts), and how a partition or watermark column of each type is compared.
 */
import { FerryError } from '../../common/errors.ts';
import type { TableColumn } from '../../tables/table-columns.ts';
import type { MysqlSession } from './mysql-client.ts';
import type { ColumnKind, TableRef } from './mysql-config.ts';
import { mysqlMessage } from './mysql-errors.ts';
import { logicalColumn } from './mysql-types.ts';

export interface ColumnInfo {
  /** As the table spells it (MySQL column names are case-insensitive). */
  name: string;
  /** The full type, for messages: `bigint(20) unsigned`, `decimal(38,10)`. */
  columnType: string;
  /** The information_schema DATA_TYPE: `float`, `timestamp`. */
  dataType: string;
  /** undefined when the column cannot bound a range. */
  kind: ColumnKind | undefined;
  /** TIME, DATETIME, TIMESTAMP: digits kept after the second's point. */
  fractionDigits: number | null;
  column: TableColumn;
}

const KINDS: Record<string, ColumnKind> = {
  tinyint: 'integer',
  smallint: 'integer',
  mediumint: 'integer',
  int: 'integer',
  bigint: 'integer',
  year: 'integer',
  decimal: 'number',
  float: 'number',
  double: 'number',
  date: 'date',
  datetime: 'datetime',
  timestamp: 'datetime',
};

export async function tableExists(session: MysqlSession, ref: TableRef, operation: string): Promise<boolean> {
  const rows = await session.query<{ found: number }>(
    'SELECT 1 AS found FROM information_schema.TABLES WHERE TABLE_SCHEMA = ? AND TABLE_NAME = ?',
    [ref.schemaName, ref.tableName],
    operation,
  );
  return rows.length > 0;
}

export async function assertTableExists(
  session: MysqlSession,
  ref: TableRef,
  linkedService: string,
  operation: string,
): Promise<void> {
  if (!(await tableExists(session, ref, operation))) {
    throw new FerryError(
      'store_object_missing',
      mysqlMessage(linkedService, `table ${ref.table} does not exist (${operation})`),
    );
  }
}

/** Every column of the table, in table order. */
export async function readColumns(
  session: MysqlSession,
  ref: TableRef,
  operation: string,
): Promise<ColumnInfo[]> {
  const rows = await session.query<{
    name: string;
    data_type: string;
    column_type: string;
    is_nullable: string;
    num_precision: string | number | null;
    num_scale: string | number | null;
    dt_precision: string | number | null;
  }>(
    `SELECT COLUMN_NAME AS name, DATA_TYPE AS data_type, COLUMN_TYPE AS column_type,
            IS_NULLABLE AS is_nullable, NUMERIC_PRECISION AS num_precision, NUMERIC_SCALE AS num_scale,
            DATETIME_PRECISION AS dt_precision
       FROM information_schema.COLUMNS WHERE TABLE_SCHEMA = ? AND TABLE_NAME = ? ORDER BY ORDINAL_POSITION`,
    [ref.schemaName, ref.tableName],
    operation,
  );
  const jsonColumns = rows.some((r) => r.data_type.toLowerCase() === 'longtext')
    ? await mariadbJsonColumns(session, ref, operation)
    : new Set<string>();
  return rows.map((r) => {
    const dataType = r.data_type.toLowerCase();
    return {
      name: r.name,
      columnType: r.column_type,
      dataType,
      kind: KINDS[dataType],
      fractionDigits: r.dt_precision === null ? null : Number(r.dt_precision),
      column: logicalColumn({
        name: r.name,
        dataType,
        columnType: r.column_type,
        nullable: r.is_nullable === 'YES',
        precision: r.num_precision === null ? null : Number(r.num_precision),
        scale: r.num_scale === null ? null : Number(r.num_scale),
        json: jsonColumns.has(r.name.toLowerCase()),
      }),
    };
  });
}

/**
 * MariaDB's JSON type is LONGTEXT with a `json_valid(col)` check. MySQL's CHECK_CONSTRAINTS has no
 * TABLE_NAME (its JSON is a type of its own), so there no row matches.
 */
async function mariadbJsonColumns(
  session: MysqlSession,
  ref: TableRef,
  operation: string,
): Promise<Set<string>> {
  const rows = await session.query<Record<string, unknown>>(
    'SELECT * FROM information_schema.CHECK_CONSTRAINTS WHERE CONSTRAINT_SCHEMA = ?',
    [ref.schemaName],
    operation,
  );
  const names = new Set<string>();
  for (const row of rows) {
    if (row.TABLE_NAME !== ref.tableName || typeof row.CHECK_CLAUSE !== 'string') continue;
    const match = /^json_valid\(`([^`]+)`\)$/i.exec(row.CHECK_CLAUSE.trim());
    if (match?.[1] !== undefined) names.add(match[1].toLowerCase());
  }
  return names;
}

/** The named columns in the order asked (all of them when `names` is undefined); a missing one is store_object_missing. */
export function pickColumns(
  all: readonly ColumnInfo[],
  names: readonly string[] | undefined,
  ref: TableRef,
  linkedService: string,
  operation: string,
): ColumnInfo[] {
  if (names === undefined) return [...all];
  const byName = new Map(all.map((c) => [c.name.toLowerCase(), c]));
  return names.map((name) => {
    const info = byName.get(name.toLowerCase());
    if (!info) {
      throw new FerryError(
        'store_object_missing',
        mysqlMessage(linkedService, `column ${name} of table ${ref.table} does not exist (${operation})`),
      );
    }
    return info;
  });
}

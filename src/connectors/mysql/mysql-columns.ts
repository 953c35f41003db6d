/**
 * What information_schema says about a table and its columns: whether the table exists, each
 * column's type, and how a partition column of that type is split.
 */
import { FerryError } from '../../common/errors.ts';
import type { MysqlSession } from './mysql-client.ts';
import type { CompiledMysqlSource } from './mysql-config.ts';
import { mysqlMessage } from './mysql-errors.ts';

/** How a partition column is split: integers exactly, numbers approximately, dates and times on the epoch. */
export type ColumnKind = 'integer' | 'number' | 'date' | 'datetime';

export interface ColumnInfo {
  /** As the table spells it (MySQL column names are case-insensitive). */
  name: string;
  /** The full type, for messages: `bigint(20) unsigned`, `decimal(38,10)`. */
  columnType: string;
  /** undefined when the column cannot be a partition column. */
  kind: ColumnKind | undefined;
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

export async function assertTableExists(
  session: MysqlSession,
  source: CompiledMysqlSource,
  linkedService: string,
  operation: string,
): Promise<void> {
  const rows = await session.query<{ found: number }>(
    'SELECT 1 AS found FROM information_schema.TABLES WHERE TABLE_SCHEMA = ? AND TABLE_NAME = ?',
    [source.schemaName, source.tableName],
    operation,
  );
  if (rows.length === 0) {
    throw new FerryError(
      'store_object_missing',
      mysqlMessage(linkedService, `table ${source.table} does not exist (${operation})`),
    );
  }
}

/** The named columns, in the order asked; a missing one is store_object_missing. */
export async function describeColumns(
  session: MysqlSession,
  source: CompiledMysqlSource,
  names: readonly string[],
  linkedService: string,
  operation: string,
): Promise<ColumnInfo[]> {
  const rows = await session.query<{ name: string; data_type: string; column_type: string }>(
    `SELECT COLUMN_NAME AS name, DATA_TYPE AS data_type, COLUMN_TYPE AS column_type
       FROM information_schema.COLUMNS WHERE TABLE_SCHEMA = ? AND TABLE_NAME = ?`,
    [source.schemaName, source.tableName],
    operation,
  );
  const byName = new Map(rows.map((r) => [r.name.toLowerCase(), r]));
  return names.map((name) => {
    const row = byName.get(name.toLowerCase());
    if (!row) {
      throw new FerryError(
        'store_object_missing',
        mysqlMessage(linkedService, `column ${name} of table ${source.table} does not exist (${operation})`),
      );
    }
    return { name: row.name, columnType: row.column_type, kind: KINDS[row.data_type.toLowerCase()] };
  });
}

/**
 * What the catalog says about a table and its columns: whether the table exists, each column's type,
 * and how a partition column of that type is split.
 */
import { FerryError } from '../../common/errors.ts';
import type { PostgresSession } from './postgres-client.ts';
import type { CompiledPostgresSource } from './postgres-config.ts';
import { postgresMessage } from './postgres-errors.ts';

/** How a partition column is split: integers exactly, numbers approximately, dates and times on the epoch. */
export type ColumnKind = 'integer' | 'number' | 'date' | 'timestamp';

export interface ColumnInfo {
  name: string;
  /** The type without modifiers, as SQL can cast to it: `bigint`, `numeric`, `timestamp with time zone`. */
  castType: string;
  /** undefined when the column cannot be a partition column. */
  kind: ColumnKind | undefined;
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

export async function assertTableExists(
  session: PostgresSession,
  source: CompiledPostgresSource,
  linkedService: string,
): Promise<void> {
  // to_regclass answers NULL for a missing table instead of failing, so the message can be ours.
  const rows = await session.query<{ found: boolean }>(
    'SELECT to_regclass($1) IS NOT NULL AS found',
    [source.tableSql],
    'check table',
  );
  if (rows[0]?.found !== true) {
    throw new FerryError(
      'store_object_missing',
      postgresMessage(linkedService, `relation "${source.table}" does not exist (check table)`),
    );
  }
}

/** The named columns, in the order asked; a missing one is store_object_missing. */
export async function describeColumns(
  session: PostgresSession,
  source: CompiledPostgresSource,
  names: readonly string[],
  linkedService: string,
): Promise<ColumnInfo[]> {
  const rows = await session.query<{ name: string; cast_type: string; typname: string }>(
    `SELECT a.attname AS name, format_type(a.atttypid, NULL) AS cast_type, t.typname
       FROM pg_attribute a JOIN pg_type t ON t.oid = a.atttypid
      WHERE a.attrelid = $1::regclass AND a.attnum > 0 AND NOT a.attisdropped AND a.attname = ANY($2::text[])`,
    [source.tableSql, names],
    'describe columns',
  );
  const byName = new Map(rows.map((r) => [r.name, r]));
  return names.map((name) => {
    const row = byName.get(name);
    if (!row) {
      throw new FerryError(
        'store_object_missing',
        postgresMessage(
          linkedService,
          `column "${name}" of relation "${source.table}" does not exist (describe columns)`,
        ),
      );
    }
    return { name, castType: row.cast_type, kind: KINDS[row.typname] };
  });
}

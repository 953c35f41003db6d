/**
 * The WHERE conditions a read or a plan applies: a range partition and an incremental copy's window.
 * Bounds travel as text and are cast to the column's type here, on the server, which parses every
 * value it printed (BC dates, `infinity`, numerics of any length) exactly.
 */
import type { WatermarkWindowT } from '../../protocol/task.ts';
import type { ColumnInfo } from './postgres-columns.ts';
import { quoteIdentifier, quoteLiteral } from './postgres-config.ts';
import type { RangePartitionT } from '../range-partitions.ts';

type Column = Pick<ColumnInfo, 'name' | 'castType'>;

function literal(column: Column, value: string): string {
  return `${quoteLiteral(value)}::${column.castType}`;
}

/** `"id" >= '10'::bigint AND "id" < '20'::bigint`, with `OR "id" IS NULL` for the range that takes NULLs. */
export function rangeSql(column: Column, range: RangePartitionT): string {
  const col = quoteIdentifier(column.name);
  const bounds: string[] = [];
  if (range.lo !== null) bounds.push(`${col} >= ${literal(column, range.lo)}`);
  if (range.hi !== null) bounds.push(`${col} < ${literal(column, range.hi)}`);
  const bounded = bounds.length === 0 ? 'TRUE' : bounds.join(' AND ');
  return range.includeNulls ? `(${bounded} OR ${col} IS NULL)` : bounded;
}

/**
 * `"at" > '2025-01-01 00:00:00+00'::timestamptz AND "at" <= '...'::timestamptz`: the rows of one
 * incremental run. No lower bound on the first run; an empty window (nothing to copy when it was
 * planned) matches nothing. NULLs never match: a row without a watermark value is never copied.
 */
export function windowSql(column: Column, window: Pick<WatermarkWindowT, 'after' | 'upTo'>): string {
  if (window.upTo === null) return 'FALSE';
  const col = quoteIdentifier(column.name);
  const upper = `${col} <= ${literal(column, window.upTo)}`;
  return window.after === null ? upper : `${col} > ${literal(column, window.after)} AND ${upper}`;
}

/** Joins conditions with AND into a WHERE clause (with its leading space), or nothing. */
export function whereSql(conditions: readonly string[]): string {
  return conditions.length === 0 ? '' : ` WHERE ${conditions.map((c) => `(${c})`).join(' AND ')}`;
}

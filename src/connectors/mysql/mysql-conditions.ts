/**
 * The WHERE conditions a read is limited by: a range of the partition column and the watermark
 * window. Bounds are never free text: boundLiteral checks each looks like a value of its column's
 * kind before it reaches the SQL.
 */
import { FerryError } from '../../common/errors.ts';
import type { PartitionT, WatermarkWindowT } from '../../protocol/task.ts';
import type { ColumnInfo } from './mysql-columns.ts';
import { boundLiteral, quoteIdentifier } from './mysql-config.ts';

type RangePartitionT = Extract<PartitionT, { kind: 'range' }>;

/** `` `id` >= 10 AND `id` < 20 ``, with `` OR `id` IS NULL `` for the range that takes NULLs. */
export function rangeSql(
  column: Pick<ColumnInfo, 'name' | 'columnType' | 'kind'>,
  range: RangePartitionT,
): string {
  const kind = column.kind;
  if (kind === undefined) {
    throw new FerryError(
      'bad_request',
      `column ${column.name} (${column.columnType}) cannot be split into ranges`,
    );
  }
  const col = quoteIdentifier(column.name);
  const bounds: string[] = [];
  if (range.lo !== null) bounds.push(`${col} >= ${boundLiteral(kind, range.lo)}`);
  if (range.hi !== null) bounds.push(`${col} < ${boundLiteral(kind, range.hi)}`);
  const bounded = bounds.length === 0 ? 'TRUE' : bounds.join(' AND ');
  return range.includeNulls ? `(${bounded} OR ${col} IS NULL)` : bounded;
}

/**
 * The rows of a watermark window: above `after`, at most `upTo`. Rows whose watermark is NULL are in
 * no window: they have no place in the order the watermark follows.
 */
export function windowSql(
  column: Pick<ColumnInfo, 'name' | 'columnType' | 'kind' | 'dataType'>,
  window: WatermarkWindowT,
): string {
  const kind = watermarkKind(column);
  const col = quoteIdentifier(column.name);
  if (window.upTo === null) return 'FALSE';
  const below = `${col} <= ${boundLiteral(kind, window.upTo)}`;
  return window.after === null ? below : `${col} > ${boundLiteral(kind, window.after)} AND ${below}`;
}

/**
 * Watermarks are compared exactly, so only columns whose text form is exact may be one: integers,
 * DECIMAL, dates and times. FLOAT's text is rounded (MariaDB prints 6 digits), which would make a
 * run skip or repeat the rows at its high mark.
 */
export function watermarkKind(column: Pick<ColumnInfo, 'name' | 'columnType' | 'kind' | 'dataType'>) {
  const kind = column.kind;
  if (kind === undefined || (kind === 'number' && column.dataType !== 'decimal')) {
    throw new FerryError(
      'bad_request',
      `watermarkColumn ${column.name} has type ${column.columnType}; it must be an integer, decimal, date, datetime or timestamp column`,
    );
  }
  return kind;
}

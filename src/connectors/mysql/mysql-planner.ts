/**
 * Plans a MySQL or MariaDB source: checks the table and columns exist, finds the watermark window
 * of an incremental copy, then makes either one whole-table partition or ranges of the partition
 * column between its min and max (within the window).
 *
 * Bounds come from plain MIN()/MAX(), which an index answers without a scan. Integers are split
 * exactly (BigInt: BIGINT UNSIGNED goes past 2^63), DECIMAL and floating point columns as doubles
 * (only order matters), dates on whole days and DATETIME/TIMESTAMP on microseconds since the epoch,
 * in UTC like every session. The range arithmetic is store-neutral (range-partitions.ts).
 *
 * The window's upper bound is fixed here, at plan time: rows written while the copy runs belong to
 * the next run, and every task of this one reads the same set whenever it runs or reruns.
 */
import { FerryError } from '../../common/errors.ts';
import type { PartitionT, ResolvedEndpointT, WatermarkWindowT } from '../../protocol/task.ts';
import type { ConnectorContext, PlanContext, SourcePlan } from '../connector.ts';
import { rangePartitions, splitIntegers, splitNumbers } from '../range-partitions.ts';
import type { TableColumn } from '../../tables/table-columns.ts';
import { connectMysql, type MysqlSession } from './mysql-client.ts';
import { assertTableExists, pickColumns, readColumns, type ColumnInfo } from './mysql-columns.ts';
import { windowSql, watermarkKind } from './mysql-conditions.ts';
import {
  boundLiteral,
  compileMysqlSource,
  compileMysqlTarget,
  quoteIdentifier,
  type CompiledMysqlSource,
} from './mysql-config.ts';
import { mysqlMessage } from './mysql-errors.ts';

const WHOLE: PartitionT = { kind: 'whole' };
const MS_PER_DAY = 86_400_000;

export async function planMysql(source: ResolvedEndpointT, ctx: PlanContext): Promise<SourcePlan> {
  const target = compileMysqlTarget(source);
  const options = compileMysqlSource(source, target.database);
  const ls = target.linkedService;
  const session = await connectMysql(target, ctx.signal);
  try {
    await assertTableExists(session, options, ls, 'plan');
    const all = await readColumns(session, options, 'plan');
    const one = (name: string): ColumnInfo => pickColumns(all, [name], options, ls, 'plan')[0] as ColumnInfo;
    pickColumns(all, options.columns, options, ls, 'plan');

    let window: WatermarkWindowT | undefined;
    let within = '';
    if (options.watermarkColumn !== undefined) {
      window = await findWindow(session, options, one(options.watermarkColumn), ctx.watermark, ls);
      if (window.upTo === window.after) return { partitions: [], window };
      within = ` WHERE ${windowSql(one(options.watermarkColumn), window)}`;
    }
    const plan = (partitions: PartitionT[]): SourcePlan => (window ? { partitions, window } : { partitions });
    const partitionColumn = options.partitionColumn;
    if (partitionColumn === undefined) return plan([WHOLE]);
    const column = one(partitionColumn);
    if (column.kind === undefined) {
      throw new FerryError(
        'bad_request',
        mysqlMessage(
          ls,
          `partitionColumn ${partitionColumn} has type ${column.columnType}; it must be an integer, decimal, floating point, date, datetime or timestamp column`,
        ),
      );
    }
    if (options.partitions === 1) return plan([WHOLE]);
    const cuts = await findCuts(session, options, column, options.partitions, within);
    // The partition names the column as the pipeline wrote it; the reader looks it up again.
    const ranges = rangePartitions(partitionColumn, cuts);
    return plan(ranges.length === 0 ? [WHOLE] : ranges);
  } finally {
    await session.close();
  }
}

/** The columns the source yields, for a sink that creates its table at plan time. */
export async function describeMysql(
  source: ResolvedEndpointT,
  ctx: ConnectorContext,
): Promise<TableColumn[]> {
  const target = compileMysqlTarget(source);
  const options = compileMysqlSource(source, target.database);
  const session = await connectMysql(target, ctx.signal);
  try {
    await assertTableExists(session, options, target.linkedService, 'describe');
    const all = await readColumns(session, options, 'describe');
    return pickColumns(all, options.columns, options, target.linkedService, 'describe').map((c) => c.column);
  } finally {
    await session.close();
  }
}

/**
 * From the last run's high mark to the column's highest value now. No rows above the mark: the
 * window is empty and the mark stays where it was.
 */
async function findWindow(
  session: MysqlSession,
  source: CompiledMysqlSource,
  column: ColumnInfo,
  after: string | null,
  linkedService: string,
): Promise<WatermarkWindowT> {
  let above = '';
  try {
    const kind = watermarkKind(column);
    if (after !== null) above = ` WHERE ${quoteIdentifier(column.name)} > ${boundLiteral(kind, after)}`;
  } catch (err) {
    if (err instanceof FerryError) throw new FerryError(err.code, mysqlMessage(linkedService, err.message));
    throw err;
  }
  const rows = await session.query<{ hi: string | null }>(
    `SELECT CAST(MAX(${quoteIdentifier(column.name)}) AS CHAR) AS hi FROM ${source.tableSql}${above}`,
    [],
    'find watermark',
  );
  const upTo = rows[0]?.hi ?? after;
  return { column: source.watermarkColumn ?? column.name, after, upTo };
}

async function findCuts(
  session: MysqlSession,
  source: CompiledMysqlSource,
  column: ColumnInfo,
  n: number,
  within: string,
): Promise<string[]> {
  const col = quoteIdentifier(column.name);
  const bounds = (aggregate: (agg: 'MIN' | 'MAX') => string) => extremes(session, source, aggregate, within);
  switch (column.kind) {
    case 'integer': {
      const b = await bounds((agg) => `CAST(${agg}(${col}) AS CHAR)`);
      return b ? splitIntegers(BigInt(b.lo), BigInt(b.hi), n).map(String) : [];
    }
    case 'number': {
      const b = await bounds((agg) => `CAST(${agg}(${col}) AS CHAR)`);
      return b ? splitNumbers(Number(b.lo), Number(b.hi), n).map(String) : [];
    }
    case 'date': {
      const b = await bounds((agg) => `CAST(DATEDIFF(${agg}(${col}), '1970-01-01') AS CHAR)`);
      if (!b) return [];
      return splitIntegers(BigInt(b.lo), BigInt(b.hi), n).map((days) =>
        new Date(Number(days) * MS_PER_DAY).toISOString().slice(0, 10),
      );
    }
    case 'datetime': {
      const b = await bounds(
        (agg) => `CAST(TIMESTAMPDIFF(MICROSECOND, '1970-01-01 00:00:00', ${agg}(${col})) AS CHAR)`,
      );
      return b ? splitIntegers(BigInt(b.lo), BigInt(b.hi), n).map(formatMicros) : [];
    }
    case undefined:
      return [];
  }
}

/** min and max of the column (through `aggregate`), or undefined when it has no non-NULL value. */
async function extremes(
  session: MysqlSession,
  source: CompiledMysqlSource,
  aggregate: (agg: 'MIN' | 'MAX') => string,
  within: string,
): Promise<{ lo: string; hi: string } | undefined> {
  const rows = await session.query<{ lo: string | null; hi: string | null }>(
    `SELECT ${aggregate('MIN')} AS lo, ${aggregate('MAX')} AS hi FROM ${source.tableSql}${within}`,
    [],
    'find bounds',
  );
  const row = rows[0];
  return row?.lo == null || row.hi == null ? undefined : { lo: row.lo, hi: row.hi };
}

/** Microseconds since 1970-01-01 UTC -> `2024-01-31 12:00:00.000001`, as MySQL writes a DATETIME(6). */
export function formatMicros(micros: bigint): string {
  let ms = micros / 1000n;
  if (micros < 0n && ms * 1000n !== micros) ms -= 1n;
  const rest = micros - ms * 1000n;
  const iso = new Date(Number(ms)).toISOString();
  return `${iso.slice(0, 10)} ${iso.slice(11, 23)}${String(rest).padStart(3, '0')}`;
}

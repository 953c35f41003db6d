/**
 * Plans a PostgreSQL source: checks the table and columns exist, finds the incremental window when
 * there is a watermark column, then either one whole-table partition or ranges of the partition
 * column between its min and max (within the window).
 *
 * Bounds are found with plain min()/max(), which an index answers without a scan; only when they are
 * not finite (NaN, ±Infinity) is the table scanned again for the finite extremes. Non-finite values
 * still land in a range: the outer ranges are open-ended. Dates and times are split on the epoch
 * (days, microseconds) in exact integers and turned back into text by PostgreSQL itself, which knows
 * every date it can store (BC, year 10000+) better than JavaScript does. Needs PostgreSQL 14+ for
 * date/time columns holding ±infinity.
 *
 * Incremental copy: a run copies the rows whose watermark column is above the last run's high mark
 * and at most the highest value now, found here; rows added meanwhile above it wait for the next
 * run. The column must only grow: a row that arrives later with a value at or below a high mark
 * already copied is never copied, nor is a row whose value is NULL. Values that sort above every
 * other (NaN, `infinity`) become the high mark and stop the copy there.
 */
import { FerryError } from '../../common/errors.ts';
import type { PartitionT, ResolvedEndpointT, WatermarkWindowT } from '../../protocol/task.ts';
import type { ConnectorContext, PlanContext, SourcePlan } from '../connector.ts';
import type { TableColumn } from '../../tables/table-columns.ts';
import { connectPostgres, type PostgresSession } from './postgres-client.ts';
import {
  describeTable,
  pickColumn,
  sourceColumns,
  type ColumnInfo,
  type ColumnKind,
} from './postgres-columns.ts';
import { whereSql, windowSql } from './postgres-conditions.ts';
import {
  compilePostgresSource,
  compilePostgresTarget,
  quoteIdentifier,
  quoteLiteral,
  type CompiledPostgresSource,
} from './postgres-config.ts';
import { postgresMessage, withStoreName } from './postgres-errors.ts';
import { rangePartitions, splitIntegers, splitNumbers } from '../range-partitions.ts';

const WHOLE: PartitionT = { kind: 'whole' };
const CHECK = 'check table';

export async function planPostgres(source: ResolvedEndpointT, ctx: PlanContext): Promise<SourcePlan> {
  const target = compilePostgresTarget(source);
  const options = compilePostgresSource(source);
  const ls = target.linkedService;
  const session = await connectPostgres(target, ctx.signal);
  try {
    const table = await describeTable(session, options, ls, CHECK);
    sourceColumns(table, options, ls, CHECK); // the columns asked for exist
    const conditions: string[] = [];
    let window: WatermarkWindowT | undefined;
    if (options.watermarkColumn !== undefined) {
      const column = pickColumn(table, options, options.watermarkColumn, ls, CHECK);
      splittable(column, 'watermarkColumn', ls); // an orderable type, whose max() text reads back
      const found = await findWindow(session, options, column, ctx.watermark, ls);
      // Nothing above the last high mark: nothing to copy, and the mark stays.
      if (found.upTo === found.after) return { partitions: [], window: found };
      conditions.push(withStoreName(ls, () => windowSql(column, found)));
      window = found;
    }
    const partitionColumn = options.partitionColumn;
    let partitions = [WHOLE];
    if (partitionColumn !== undefined && options.partitions > 1) {
      const column = pickColumn(table, options, partitionColumn, ls, CHECK);
      const kind = splittable(column, 'partitionColumn', ls);
      const cuts = await findCuts(session, options, column, kind, options.partitions, conditions);
      const ranges = rangePartitions(partitionColumn, cuts);
      if (ranges.length > 0) partitions = ranges;
    }
    return window === undefined ? { partitions } : { partitions, window };
  } finally {
    await session.close();
  }
}

/** The columns the source yields, for a sink that creates its table at plan time. */
export async function describePostgres(
  source: ResolvedEndpointT,
  ctx: ConnectorContext,
): Promise<TableColumn[]> {
  const target = compilePostgresTarget(source);
  const options = compilePostgresSource(source);
  const session = await connectPostgres(target, ctx.signal);
  try {
    const table = await describeTable(session, options, target.linkedService, CHECK);
    return sourceColumns(table, options, target.linkedService, CHECK);
  } finally {
    await session.close();
  }
}

function splittable(column: ColumnInfo, option: string, ls: string): ColumnKind {
  if (column.kind === undefined) {
    throw new FerryError(
      'bad_request',
      postgresMessage(
        ls,
        `${option} "${column.name}" has type ${column.castType}; it must be an integer, numeric, floating point, date or timestamp column`,
      ),
    );
  }
  return column.kind;
}

/** This run's window: above the last high mark, up to the highest value now (the old mark if none). */
async function findWindow(
  session: PostgresSession,
  source: CompiledPostgresSource,
  column: ColumnInfo,
  after: string | null,
  ls: string,
): Promise<WatermarkWindowT> {
  const col = quoteIdentifier(column.name);
  const above = withStoreName(ls, () =>
    after === null ? '' : ` WHERE ${col} > ${quoteLiteral(after)}::${column.castType}`,
  );
  const rows = await session.query<{ hi: string | null }>(
    `SELECT max(${col})::text AS hi FROM ${source.tableSql}${above}`,
    [],
    'find watermark',
  );
  return { column: column.name, after, upTo: rows[0]?.hi ?? after };
}

interface Extremes {
  lo: string;
  hi: string;
}

async function findCuts(
  session: PostgresSession,
  source: CompiledPostgresSource,
  column: ColumnInfo,
  kind: ColumnKind,
  n: number,
  conditions: readonly string[],
): Promise<string[]> {
  const bounds = (aggregate: (agg: 'min' | 'max') => string, where?: string): Promise<Extremes | undefined> =>
    extremes(session, source, aggregate, where === undefined ? conditions : [...conditions, where]);
  const col = quoteIdentifier(column.name);
  switch (kind) {
    case 'integer': {
      const b = await bounds((agg) => `${agg}(${col})::text`);
      return b ? splitIntegers(BigInt(b.lo), BigInt(b.hi), n).map(String) : [];
    }
    case 'number': {
      const aggregate = (agg: string): string => `${agg}(${col})::text`;
      let b = await bounds(aggregate);
      if (b && (!isFiniteText(b.lo) || !isFiniteText(b.hi))) {
        b = await bounds(aggregate, `${col}::text NOT IN ('NaN', 'Infinity', '-Infinity')`);
      }
      return b ? splitNumbers(Number(b.lo), Number(b.hi), n).map(String) : [];
    }
    case 'date':
    case 'timestamp': {
      // Days for dates, so every cut is a whole day; microseconds (the type's resolution) for times.
      const epoch = (agg: string): string =>
        kind === 'date'
          ? `round(extract(epoch FROM ${agg}(${col})::timestamp) / 86400)::text`
          : `round(extract(epoch FROM ${agg}(${col})) * 1000000)::text`;
      let b = await bounds(epoch);
      if (b && (!isFiniteText(b.lo) || !isFiniteText(b.hi))) {
        b = await bounds(epoch, `isfinite(${col})`);
      }
      if (!b) return [];
      const cuts = splitIntegers(BigInt(b.lo), BigInt(b.hi), n);
      return cuts.length === 0 ? [] : formatEpochCuts(session, column, kind, cuts);
    }
  }
}

/** min and max of the column (through `aggregate`), or undefined when it has no non-NULL value. */
async function extremes(
  session: PostgresSession,
  source: CompiledPostgresSource,
  aggregate: (agg: 'min' | 'max') => string,
  conditions: readonly string[],
): Promise<Extremes | undefined> {
  const rows = await session.query<{ lo: string | null; hi: string | null }>(
    `SELECT ${aggregate('min')} AS lo, ${aggregate('max')} AS hi FROM ${source.tableSql}${whereSql(conditions)}`,
    [],
    'find bounds',
  );
  const row = rows[0];
  return row?.lo == null || row.hi == null ? undefined : { lo: row.lo, hi: row.hi };
}

function isFiniteText(value: string): boolean {
  return value !== 'NaN' && value !== 'Infinity' && value !== '-Infinity';
}

async function formatEpochCuts(
  session: PostgresSession,
  column: ColumnInfo,
  kind: 'date' | 'timestamp',
  cuts: readonly bigint[],
): Promise<string[]> {
  const base = `'epoch'::${column.castType}`;
  const value =
    kind === 'date'
      ? `${base} + u.v::integer`
      : `${base} + (u.v / 1000000) * interval '1 second' + (u.v % 1000000) * interval '1 microsecond'`;
  const rows = await session.query<{ cut: string }>(
    `SELECT (${value})::text AS cut FROM unnest($1::bigint[]) WITH ORDINALITY AS u(v, i) ORDER BY u.i`,
    [cuts.map(String)],
    'format bounds',
  );
  return rows.map((r) => r.cut);
}

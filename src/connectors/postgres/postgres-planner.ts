/**
 * Plans a PostgreSQL source: checks the table and columns exist, then either one whole-table
 * partition or ranges of the partition column between its min and max.
 *
 * Bounds are found with plain min()/max(), which an index answers without a scan; only when they are
 * not finite (NaN, ±Infinity) is the table scanned again for the finite extremes. Non-finite values
 * still land in a range: the outer ranges are open-ended. Dates and times are split on the epoch
 * (days, microseconds) in exact integers and turned back into text by PostgreSQL itself, which knows
 * every date it can store (BC, year 10000+) better than JavaScript does. Needs PostgreSQL 14+ for
 * date/time columns holding ±infinity.
 */
import { FerryError } from '../../common/errors.ts';
import type { PartitionT, ResolvedEndpointT } from '../../protocol/task.ts';
import type { ConnectorContext } from '../connector.ts';
import { connectPostgres, type PostgresSession } from './postgres-client.ts';
import { assertTableExists, describeColumns, type ColumnInfo, type ColumnKind } from './postgres-columns.ts';
import {
  compilePostgresSource,
  compilePostgresTarget,
  quoteIdentifier,
  type CompiledPostgresSource,
} from './postgres-config.ts';
import { postgresMessage } from './postgres-errors.ts';
import { rangePartitions, splitIntegers, splitNumbers } from './postgres-ranges.ts';

const WHOLE: PartitionT = { kind: 'whole' };

export async function planPostgres(source: ResolvedEndpointT, ctx: ConnectorContext): Promise<PartitionT[]> {
  const target = compilePostgresTarget(source);
  const options = compilePostgresSource(source);
  const ls = target.linkedService;
  const session = await connectPostgres(target, ctx.signal);
  try {
    await assertTableExists(session, options, ls);
    const partitionColumn = options.partitionColumn;
    const wanted = new Set([
      ...(options.columns ?? []),
      ...(partitionColumn === undefined ? [] : [partitionColumn]),
    ]);
    const columns = wanted.size === 0 ? [] : await describeColumns(session, options, [...wanted], ls);
    if (partitionColumn === undefined || options.partitions === 1) return [WHOLE];

    const column = columns.find((c) => c.name === partitionColumn);
    if (column?.kind === undefined) {
      throw new FerryError(
        'bad_request',
        postgresMessage(
          ls,
          `partitionColumn "${partitionColumn}" has type ${column?.castType ?? 'unknown'}; it must be an integer, numeric, floating point, date or timestamp column`,
        ),
      );
    }
    const cuts = await findCuts(session, options, column, column.kind, options.partitions);
    const ranges = rangePartitions(column.name, cuts);
    return ranges.length === 0 ? [WHOLE] : ranges;
  } finally {
    await session.close();
  }
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
): Promise<string[]> {
  const col = quoteIdentifier(column.name);
  switch (kind) {
    case 'integer': {
      const b = await extremes(session, source, (agg) => `${agg}(${col})::text`);
      return b ? splitIntegers(BigInt(b.lo), BigInt(b.hi), n).map(String) : [];
    }
    case 'number': {
      const aggregate = (agg: string): string => `${agg}(${col})::text`;
      let b = await extremes(session, source, aggregate);
      if (b && (!isFiniteText(b.lo) || !isFiniteText(b.hi))) {
        b = await extremes(
          session,
          source,
          aggregate,
          `${col}::text NOT IN ('NaN', 'Infinity', '-Infinity')`,
        );
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
      let b = await extremes(session, source, epoch);
      if (b && (!isFiniteText(b.lo) || !isFiniteText(b.hi))) {
        b = await extremes(session, source, epoch, `isfinite(${col})`);
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
  where?: string,
): Promise<Extremes | undefined> {
  const rows = await session.query<{ lo: string | null; hi: string | null }>(
    `SELECT ${aggregate('min')} AS lo, ${aggregate('max')} AS hi FROM ${source.tableSql}${where ? ` WHERE ${where}` : ''}`,
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
  // ISO output reads back the same under any DateStyle; UTC only makes the text tidy.
  await session.query(
    "SELECT set_config('DateStyle', 'ISO', false), set_config('TimeZone', 'UTC', false)",
    [],
    'format bounds',
  );
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

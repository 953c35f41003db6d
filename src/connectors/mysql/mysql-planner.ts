/**
 * Plans a MySQL or MariaDB source: checks the table and columns exist, then either one whole-table
 * partition or ranges of the partition column between its min and max.
 *
 * Bounds come from plain MIN()/MAX(), which an index answers without a scan. Integers are split
 * exactly (BigInt: BIGINT UNSIGNED goes past 2^63), DECIMAL and floating point columns as doubles
 * (only order matters), dates on whole days and DATETIME/TIMESTAMP on microseconds since the epoch,
 * in UTC like every session. The range arithmetic is the store-neutral one the PostgreSQL source uses.
 */
import { FerryError } from '../../common/errors.ts';
import type { PartitionT, ResolvedEndpointT } from '../../protocol/task.ts';
import type { ConnectorContext } from '../connector.ts';
import { rangePartitions, splitIntegers, splitNumbers } from '../postgres/postgres-ranges.ts';
import { connectMysql, type MysqlSession } from './mysql-client.ts';
import { assertTableExists, describeColumns, type ColumnInfo } from './mysql-columns.ts';
import {
  compileMysqlSource,
  compileMysqlTarget,
  quoteIdentifier,
  type CompiledMysqlSource,
} from './mysql-config.ts';
import { mysqlMessage } from './mysql-errors.ts';

const WHOLE: PartitionT = { kind: 'whole' };
const MS_PER_DAY = 86_400_000;

export async function planMysql(source: ResolvedEndpointT, ctx: ConnectorContext): Promise<PartitionT[]> {
  const target = compileMysqlTarget(source);
  const options = compileMysqlSource(source, target.database);
  const ls = target.linkedService;
  const session = await connectMysql(target, ctx.signal);
  try {
    await assertTableExists(session, options, ls, 'plan');
    const partitionColumn = options.partitionColumn;
    const wanted = new Set([
      ...(options.columns ?? []),
      ...(partitionColumn === undefined ? [] : [partitionColumn]),
    ]);
    const columns = wanted.size === 0 ? [] : await describeColumns(session, options, [...wanted], ls, 'plan');
    if (partitionColumn === undefined || options.partitions === 1) return [WHOLE];

    const column = columns.find((c) => c.name.toLowerCase() === partitionColumn.toLowerCase());
    if (column?.kind === undefined) {
      throw new FerryError(
        'bad_request',
        mysqlMessage(
          ls,
          `partitionColumn ${partitionColumn} has type ${column?.columnType ?? 'unknown'}; it must be an integer, decimal, floating point, date, datetime or timestamp column`,
        ),
      );
    }
    const cuts = await findCuts(session, options, column, options.partitions);
    // The partition names the column as the pipeline wrote it; the reader looks it up again.
    const ranges = rangePartitions(partitionColumn, cuts);
    return ranges.length === 0 ? [WHOLE] : ranges;
  } finally {
    await session.close();
  }
}

async function findCuts(
  session: MysqlSession,
  source: CompiledMysqlSource,
  column: ColumnInfo,
  n: number,
): Promise<string[]> {
  const col = quoteIdentifier(column.name);
  switch (column.kind) {
    case 'integer': {
      const b = await extremes(session, source, (agg) => `CAST(${agg}(${col}) AS CHAR)`);
      return b ? splitIntegers(BigInt(b.lo), BigInt(b.hi), n).map(String) : [];
    }
    case 'number': {
      const b = await extremes(session, source, (agg) => `CAST(${agg}(${col}) AS CHAR)`);
      return b ? splitNumbers(Number(b.lo), Number(b.hi), n).map(String) : [];
    }
    case 'date': {
      const b = await extremes(
        session,
        source,
        (agg) => `CAST(DATEDIFF(${agg}(${col}), '1970-01-01') AS CHAR)`,
      );
      if (!b) return [];
      return splitIntegers(BigInt(b.lo), BigInt(b.hi), n).map((days) =>
        new Date(Number(days) * MS_PER_DAY).toISOString().slice(0, 10),
      );
    }
    case 'datetime': {
      const b = await extremes(
        session,
        source,
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
): Promise<{ lo: string; hi: string } | undefined> {
  const rows = await session.query<{ lo: string | null; hi: string | null }>(
    `SELECT ${aggregate('MIN')} AS lo, ${aggregate('MAX')} AS hi FROM ${source.tableSql}`,
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

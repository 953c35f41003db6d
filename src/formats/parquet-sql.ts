/**
 * The SQL the Parquet converter (duckdb-child.ts) runs: how each logical type is read from canonical
 * CSV and written to Parquet, and how each Parquet column type is read back as a logical type and
 * rendered as canonical text. docs/type-mapping.md is the table these functions implement.
 *
 * Writing reads the columns DuckDB would misread as VARCHAR and converts them with TRY_CAST, so a
 * value Parquet cannot hold (a PostgreSQL `infinity` date, a ` BC` one) stops the copy with a
 * message naming the column and the value (DuckDB's `error()`), instead of being written as
 * something else: DuckDB itself takes `infinity` as a date, and silently drops a date's ` BC`.
 * Other columns are read typed; a value the reader refuses there (a `NaN` decimal) gets the same
 * message from the converter (refusedValueMessage()).
 */
import type { ColumnType, TableColumn } from '../tables/table-columns.ts';

/** Marks the messages our SQL raises, so the converter can pass them on without DuckDB's wording. */
export const MESSAGE_MARK = 'ferry-value: ';

export function sqlString(s: string): string {
  return `'${s.replaceAll("'", "''")}'`;
}

export function sqlIdent(s: string): string {
  return `"${s.replaceAll('"', '""')}"`;
}

interface ParquetWrite {
  /** How DuckDB's CSV reader reads the column. */
  csvType: string;
  /** A value computed once per row beside the column (a TRY_CAST), that `expr` may use as `cast`. */
  cast?: string;
  /** The SELECT expression that turns the column (and its `cast`) into the Parquet column's value. */
  expr: (cast: string) => string;
}

/**
 * The Parquet writing query: canonical CSV at `input` to a Parquet file at `output`.
 *
 * An inner SELECT computes each checked column's TRY_CAST once, under an alias no column has; the
 * outer one checks it and refuses, or passes it on. Written as one CASE, DuckDB casts twice.
 */
export function parquetWriteSql(
  columns: readonly TableColumn[],
  input: string,
  output: string,
  limits: { bufferSize: number; maxLineSize: number },
): string {
  const plans = columns.map(parquetWrite);
  const csvColumns = columns
    .map((c, i) => `${sqlString(c.name)}: ${sqlString(plans[i]!.csvType)}`)
    .join(', ');
  let prefix = '_cast';
  while (columns.some((c) => c.name.startsWith(prefix))) prefix = `_${prefix}`;
  const alias = (i: number): string => sqlIdent(`${prefix}${i}`);
  const casts = plans.flatMap((p, i) => (p.cast ? [`${p.cast} AS ${alias(i)}`] : []));
  const select =
    columns.length === 0
      ? '*'
      : plans.map((p, i) => `${p.expr(alias(i))} AS ${sqlIdent(columns[i]!.name)}`).join(', ');
  const read = `read_csv(${sqlString(input)}, header = true, auto_detect = false,
      delim = ',', quote = '"', escape = '"', new_line = '\\n', allow_quoted_nulls = false, strict_mode = true,
      buffer_size = ${limits.bufferSize}, max_line_size = ${limits.maxLineSize}, columns = {${csvColumns}})`;
  const from = casts.length === 0 ? read : `(SELECT *, ${casts.join(', ')} FROM ${read})`;
  return `COPY (SELECT ${select} FROM ${from})
    TO ${sqlString(output)} (FORMAT parquet, USE_TMP_FILE false, ROW_GROUP_SIZE 100000, ROW_GROUP_SIZE_BYTES '32MB')`;
}

/** Whether a decimal column becomes a Parquet DECIMAL (else a string: Parquet stops at 38 digits). */
export function parquetDecimal(c: TableColumn): { precision: number; scale: number } | undefined {
  const { precision, scale = 0 } = c;
  if (precision === undefined || precision < 1 || precision > 38 || scale < 0 || scale > precision)
    return undefined;
  return { precision, scale };
}

function parquetWrite(c: TableColumn): ParquetWrite {
  const v = sqlIdent(c.name);
  const typed = (csvType: string): ParquetWrite => ({ csvType, expr: () => v });
  // A value the cast refuses (NULL from TRY_CAST) or takes but changes (`refuse`) stops the copy.
  const checked = (target: string, label: string, refuse?: (cast: string) => string): ParquetWrite => ({
    csvType: 'VARCHAR',
    cast: `TRY_CAST(${v} AS ${target})`,
    expr: (cast) => `CASE WHEN ${v} IS NOT NULL AND (${cast} IS NULL${refuse ? ` OR ${refuse(cast)}` : ''})
      THEN ${raise(c.name, v, label)} ELSE ${cast} END`,
  });
  // PostgreSQL's infinities, which DuckDB takes as its own; a date's ` BC`, which it drops (a
  // timestamp's it refuses).
  const infinite = (cast: string): string => `isinf(${cast})`;
  switch (c.type) {
    case 'boolean':
      return typed('BOOLEAN');
    case 'int16':
      return typed('SMALLINT');
    case 'int32':
      return typed('INTEGER');
    case 'int64':
      return typed('BIGINT');
    case 'float32':
      return typed('FLOAT');
    case 'float64':
      return typed('DOUBLE');
    case 'text':
      return typed('VARCHAR');
    case 'decimal': {
      // Read typed: DuckDB's reader refuses NaN, the infinities and too many integer digits (the
      // converter words that as ours, parquetLabel()). It would round more fraction digits than
      // the scale, but canonical text never has them (src/tables/table-columns.ts): checking every value
      // for them cost the converter a tenth of its CPU.
      const d = parquetDecimal(c);
      return typed(d ? `DECIMAL(${d.precision},${d.scale})` : 'VARCHAR');
    }
    case 'binary':
      return {
        csvType: 'VARCHAR',
        expr: () => `CASE WHEN ${v} IS NULL THEN NULL
          WHEN NOT (starts_with(${v}, '\\x') AND regexp_full_match(substr(${v}, 3), '([0-9a-fA-F]{2})*'))
            THEN ${raise(c.name, v, 'BYTE_ARRAY (it is not \\x hex)')}
          ELSE unhex(substr(${v}, 3)) END`,
      };
    case 'date':
      return checked('DATE', 'DATE', (cast) => `${infinite(cast)} OR ends_with(${v}, ' BC')`);
    case 'time':
      return checked('TIME', 'TIME');
    case 'timestamp':
      return checked('TIMESTAMP', 'TIMESTAMP', infinite);
    case 'timestamptz':
      return checked('TIMESTAMPTZ', 'TIMESTAMP (UTC)', infinite);
    case 'json':
      return {
        csvType: 'VARCHAR',
        expr: () => `CASE WHEN ${v} IS NULL THEN NULL WHEN json_valid(${v}) THEN ${v}::JSON
          ELSE ${raise(c.name, v, 'JSON (it is not a JSON document)')} END`,
      };
    case 'uuid':
      return checked('UUID', 'UUID');
  }
}

/** Characters of a refused value quoted in its message. */
const QUOTED_CHARS = 60;

/** DuckDB's error() with our message: column, value (cut short), and the Parquet type refusing it. */
function raise(column: string, v: string, label: string): string {
  const prefix = sqlString(`${MESSAGE_MARK}column ${JSON.stringify(column)}: value `);
  const value = `to_json(CASE WHEN length(${v}) > ${QUOTED_CHARS} THEN left(${v}, ${QUOTED_CHARS}) || '...' ELSE ${v} END)`;
  return `error(${prefix} || ${value} || ${sqlString(` cannot be written as Parquet ${label}`)})`;
}

/**
 * The message raise() gives, for a value DuckDB's CSV reader itself refused in a column it reads
 * typed (`NaN` in a decimal, 40000 in an int16): `column` is the column's name as DuckDB quoted it.
 */
export function refusedValueMessage(
  columns: readonly TableColumn[],
  column: string,
  value: string,
): string | undefined {
  const c = columns.find((x) => x.name === column);
  if (!c) return undefined;
  const chars = [...value];
  const quoted = chars.length > QUOTED_CHARS ? `${chars.slice(0, QUOTED_CHARS).join('')}...` : value;
  return `column ${JSON.stringify(column)}: value ${JSON.stringify(quoted)} cannot be written as Parquet ${parquetWrite(c).csvType}`;
}

export interface ParquetRead {
  column: TableColumn;
  /** Renders the column's canonical text (NULL stays NULL). */
  expr: string;
}

/**
 * A Parquet column (as DuckDB types it) as a table column, and the expression rendering its
 * canonical text. Types with no logical type of their own (intervals, lists, structs, maps) become
 * json when nested and text otherwise.
 */
export function parquetRead(name: string, duckType: string): ParquetRead {
  const v = sqlIdent(name);
  const col = (type: ColumnType, extra: Partial<TableColumn> = {}): TableColumn => ({
    name,
    type,
    nullable: true,
    nativeType: duckType,
    ...extra,
  });
  const asText = (type: ColumnType, extra?: Partial<TableColumn>): ParquetRead => ({
    column: col(type, extra),
    expr: `CAST(${v} AS VARCHAR)`,
  });
  const decimal = /^DECIMAL\((\d+),(\d+)\)$/.exec(duckType);
  if (decimal) return asText('decimal', { precision: Number(decimal[1]), scale: Number(decimal[2]) });
  switch (duckType) {
    case 'BOOLEAN':
      return {
        column: col('boolean'),
        expr: `CASE WHEN ${v} IS NULL THEN NULL WHEN ${v} THEN 't' ELSE 'f' END`,
      };
    case 'TINYINT':
    case 'UTINYINT':
    case 'SMALLINT':
      return asText('int16');
    case 'USMALLINT':
    case 'INTEGER':
      return asText('int32');
    case 'UINTEGER':
    case 'BIGINT':
      return asText('int64');
    case 'UBIGINT':
      return asText('decimal', { precision: 20, scale: 0 });
    case 'HUGEINT':
    case 'UHUGEINT':
    case 'BIGNUM':
    case 'VARINT':
      return asText('decimal');
    case 'FLOAT':
    case 'DOUBLE':
      return {
        column: col(duckType === 'FLOAT' ? 'float32' : 'float64'),
        // PostgreSQL's spellings of the specials; `1.0` -> `1` (DuckDB adds `.0` to whole numbers).
        expr: `CASE WHEN isnan(${v}) THEN 'NaN' WHEN isinf(${v}) THEN (CASE WHEN ${v} > 0 THEN 'Infinity' ELSE '-Infinity' END)
          ELSE regexp_replace(CAST(${v} AS VARCHAR), '\\.0$', '') END`,
      };
    case 'VARCHAR':
    case 'TIME WITH TIME ZONE':
    case 'INTERVAL':
    case 'BIT':
      return asText('text');
    case 'JSON':
      return asText('json');
    case 'BLOB':
      return { column: col('binary'), expr: `'\\x' || lower(hex(${v}))` };
    case 'DATE':
      return { column: col('date'), expr: bcSuffix(`CAST(${v} AS VARCHAR)`) };
    case 'TIME':
    case 'TIME_NS':
      return { column: col('time'), expr: `CAST(CAST(${v} AS TIME) AS VARCHAR)` };
    case 'TIMESTAMP':
    case 'TIMESTAMP_S':
    case 'TIMESTAMP_MS':
    case 'TIMESTAMP_NS': // nanoseconds are cut to microseconds, the finest a table holds
      return { column: col('timestamp'), expr: bcSuffix(`CAST(CAST(${v} AS TIMESTAMP) AS VARCHAR)`) };
    case 'TIMESTAMP WITH TIME ZONE':
      return { column: col('timestamptz'), expr: bcSuffix(`CAST(${v} AS VARCHAR)`) };
    case 'UUID':
      return asText('uuid');
  }
  if (/^ENUM\(/.test(duckType)) return asText('text');
  // LIST, ARRAY, STRUCT, MAP, UNION, VARIANT: JSON is the one text that keeps their shape.
  return { column: col('json'), expr: `CAST(to_json(${v}) AS VARCHAR)` };
}

/** DuckDB writes `0044-03-15 (BC)`; PostgreSQL, and so canonical text, `0044-03-15 BC`. */
function bcSuffix(expr: string): string {
  return `replace(${expr}, ' (BC)', ' BC')`;
}

/** The Parquet reading query: the file at `input` as canonical CSV at `output`. */
export function parquetReadSql(input: string, reads: readonly ParquetRead[], output: string): string {
  const select =
    reads.length === 0 ? '*' : reads.map((r) => `${r.expr} AS ${sqlIdent(r.column.name)}`).join(', ');
  return `COPY (SELECT ${select} FROM read_parquet(${sqlString(input)}))
    TO ${sqlString(output)} (FORMAT csv, HEADER true, DELIMITER ',', QUOTE '"', ESCAPE '"', NULLSTR '', USE_TMP_FILE false)`;
}

/**
 * MySQL and MariaDB column types <-> the logical types tables travel with (src/tables/table-columns.ts).
 *
 * Reading (information_schema -> logical type):
 * | MySQL                                           | logical                                  |
 * | ----------------------------------------------- | ---------------------------------------- |
 * | TINYINT(1), BOOL                                | boolean (0 -> f, 1 -> t, other values fail the read) |
 * | TINYINT, SMALLINT, YEAR                         | int16 (SMALLINT UNSIGNED: int32)         |
 * | MEDIUMINT, INT                                  | int32 (INT UNSIGNED: int64)              |
 * | BIGINT                                          | int64 (BIGINT UNSIGNED: decimal(20,0))   |
 * | FLOAT / DOUBLE                                  | float32 / float64                        |
 * | DECIMAL(p,s)                                    | decimal(p,s)                             |
 * | CHAR, VARCHAR, *TEXT, ENUM, SET                 | text                                     |
 * | BINARY, VARBINARY, *BLOB, BIT, spatial types    | binary                                   |
 * | DATE, TIME, DATETIME                            | date, time, timestamp                    |
 * | TIMESTAMP                                       | timestamptz (the session is UTC)         |
 * | JSON (MySQL), LONGTEXT CHECK (json_valid(col)) (MariaDB's JSON) | json                     |
 * | UUID (MariaDB 10.7+)                            | uuid                                     |
 * | anything else (INET6, ...)                      | text                                     |
 *
 * TINYINT(1) is what BOOL and BOOLEAN declare, and almost always holds a flag: read as boolean it
 * lands as a boolean in PostgreSQL and Parquet. A TINYINT(1) that holds 2 is a small integer in
 * disguise; turning it into `t` would lose the value, so such a read fails by name instead.
 *
 * Writing (logical type -> a column of a table the sink creates): the source's own type when it is
 * a MySQL type that reads back as the same logical type (a MySQL-to-MySQL copy keeps VARCHAR(40),
 * ENUM, TIMESTAMP, UNSIGNED), else the widest faithful MySQL type: boolean BOOLEAN, int16 SMALLINT,
 * int32 INT, int64 BIGINT, float32 FLOAT, float64 DOUBLE, decimal DECIMAL(p,s) (unconstrained or
 * wider than MySQL allows: DECIMAL(65,30), and a value that does not fit fails the load), text
 * LONGTEXT, binary LONGBLOB, date DATE, time TIME(6), timestamp DATETIME(6), timestamptz DATETIME(6)
 * holding UTC (MySQL's TIMESTAMP stops in 2038), json JSON, uuid CHAR(36). A bare `text` native type
 * is widened to LONGTEXT: PostgreSQL's text is unlimited where MySQL's stops at 64 KiB.
 */
import type { ColumnType, TableColumn } from '../../tables/table-columns.ts';

/** One row of information_schema.COLUMNS, as mysql-columns.ts reads it. */
export interface MysqlColumnRow {
  name: string;
  /** `int`, `varchar`, `longtext` */
  dataType: string;
  /** `int(10) unsigned`, `varchar(40)`, `enum('a','b')` */
  columnType: string;
  nullable: boolean;
  precision: number | null;
  scale: number | null;
  /** MariaDB's JSON: a LONGTEXT with a `json_valid()` check. */
  json: boolean;
}

const TEXT_TYPES = new Set(['char', 'varchar', 'tinytext', 'text', 'mediumtext', 'longtext', 'enum', 'set']);
const BINARY_TYPES = new Set([
  'binary',
  'varbinary',
  'tinyblob',
  'blob',
  'mediumblob',
  'longblob',
  'bit',
  'geometry',
  'point',
  'linestring',
  'polygon',
  'multipoint',
  'multilinestring',
  'multipolygon',
  'geometrycollection',
]);
const SIMPLE: Record<string, ColumnType> = {
  mediumint: 'int32',
  year: 'int16',
  float: 'float32',
  double: 'float64',
  real: 'float64',
  date: 'date',
  time: 'time',
  datetime: 'timestamp',
  timestamp: 'timestamptz',
  json: 'json',
  uuid: 'uuid',
};

/** The logical column of a MySQL column. */
export function logicalColumn(row: MysqlColumnRow): TableColumn {
  const base = { name: row.name, nullable: row.nullable, nativeType: row.columnType };
  const logical = logicalType(row);
  return { ...base, ...logical };
}

function logicalType(row: MysqlColumnRow): Pick<TableColumn, 'type' | 'precision' | 'scale'> {
  const dataType = row.dataType.toLowerCase();
  const columnType = row.columnType.toLowerCase();
  const unsigned = /\bunsigned\b/.test(columnType);
  switch (dataType) {
    case 'tinyint':
      return { type: /^tinyint\(1\)/.test(columnType) ? 'boolean' : 'int16' };
    case 'smallint':
      return { type: unsigned ? 'int32' : 'int16' };
    case 'int':
    case 'integer':
      return { type: unsigned ? 'int64' : 'int32' };
    case 'bigint':
      return unsigned ? { type: 'decimal', precision: 20, scale: 0 } : { type: 'int64' };
    case 'decimal':
    case 'numeric':
      return { type: 'decimal', precision: row.precision ?? 10, scale: row.scale ?? 0 };
  }
  if (row.json && dataType === 'longtext') return { type: 'json' };
  if (TEXT_TYPES.has(dataType)) return { type: 'text' };
  if (BINARY_TYPES.has(dataType)) return { type: 'binary' };
  return { type: SIMPLE[dataType] ?? 'text' };
}

// ---- writing ------------------------------------------------------------------------------------

/** MySQL's own limits on DECIMAL. */
const MAX_PRECISION = 65;
const MAX_SCALE = 30;

const GENERIC: Record<Exclude<ColumnType, 'decimal'>, string> = {
  boolean: 'BOOLEAN',
  int16: 'SMALLINT',
  int32: 'INT',
  int64: 'BIGINT',
  float32: 'FLOAT',
  float64: 'DOUBLE',
  text: 'LONGTEXT',
  binary: 'LONGBLOB',
  date: 'DATE',
  time: 'TIME(6)',
  timestamp: 'DATETIME(6)',
  timestamptz: 'DATETIME(6)',
  json: 'JSON',
  uuid: 'CHAR(36)',
};

/**
 * information_schema.COLUMN_TYPE spellings that may be written into a CREATE TABLE as they are.
 * Anything else (another store's type, or text that would need more than this) is not trusted.
 * ENUM and SET members are quoted, doubled quotes allowed, backslashes not.
 */
const NATIVE_SHAPE =
  /^(?:(?:tinyint|smallint|mediumint|int|bigint)(?:\(\d{1,3}\))?(?: unsigned)?(?: zerofill)?|(?:decimal|float|double)(?:\(\d{1,2}(?:,\d{1,2})?\))?(?: unsigned)?(?: zerofill)?|(?:var)?(?:char|binary)\(\d{1,5}\)|(?:tiny|medium|long)?(?:text|blob)|bit\(\d{1,2}\)|year(?:\(4\))?|date|(?:time|datetime|timestamp)(?:\([0-6]\))?|json|uuid|(?:enum|set)\('(?:[^'\\]|'')*'(?:,'(?:[^'\\]|'')*')*\))$/;

/** The type a table created for `column` gets (without NULL / NOT NULL). */
export function mysqlTypeFor(column: TableColumn): string {
  const native = column.nativeType?.toLowerCase();
  if (native !== undefined && NATIVE_SHAPE.test(native) && sameLogical(column, native)) {
    return native === 'text' ? 'LONGTEXT' : native;
  }
  if (column.type !== 'decimal') return GENERIC[column.type];
  const { precision, scale } = column;
  if (precision === undefined || precision > MAX_PRECISION || (scale ?? 0) > MAX_SCALE) {
    return `DECIMAL(${MAX_PRECISION},${MAX_SCALE})`;
  }
  return `DECIMAL(${precision},${Math.min(scale ?? 0, precision)})`;
}

/** Whether `native`, read back by this connector, is the same logical type as `column`. */
function sameLogical(column: TableColumn, native: string): boolean {
  const dataType = /^[a-z]+/.exec(native)?.[0] ?? '';
  const digits = /^[a-z]+\((\d+)(?:,(\d+))?\)/.exec(native);
  const back = logicalType({
    name: column.name,
    dataType,
    columnType: native,
    nullable: true,
    precision: digits?.[1] === undefined ? null : Number(digits[1]),
    scale: digits?.[1] === undefined ? null : Number(digits[2] ?? 0),
    json: false,
  });
  if (back.type !== column.type) return false;
  if (back.type !== 'decimal') return true;
  // DECIMAL without digits is DECIMAL(10,0) to MySQL; bigint unsigned reads as decimal(20,0).
  return back.precision === column.precision && back.scale === column.scale;
}

/**
 * Canonical text (src/tables/table-columns.ts) -> what MySQL takes, for the few logical types whose canonical
 * text MySQL does not read as it is:
 * - boolean: `t`/`f` (and true/false/1/0) -> 1/0;
 * - binary: `\x` and hex -> the hex alone, which the loaders turn into bytes (UNHEX, X'..'); MySQL's
 *   UNHEX gives NULL for a bad digit, so the digits are checked here;
 * - timestamptz: `... +00` -> the same without the zone; the session is UTC. Another offset is not
 *   canonical and is refused rather than shifted.
 * Everything else (numbers, dates, times, text, JSON, UUIDs) is passed as text and converted by the
 * server; what it cannot hold fails the load (the loaders watch for warnings).
 *
 * The server converts a few values silently, with no warning to catch, so the target column's type
 * is checked here first (guardFor): a fraction into an integer column is rounded (`1.5` -> 2), and
 * fractional seconds beyond a TIME/DATETIME/TIMESTAMP column's digits are cut. Such values fail
 * instead, unless the digits lost are zeros.
 */
import type { ColumnType } from '../../tables/table-columns.ts';
import type { ColumnInfo } from './mysql-columns.ts';

/** A canonical value MySQL cannot take; the loaders add the row and column. */
export class ValueError extends Error {}

const TRUE = new Set(['t', 'true', '1']);
const FALSE = new Set(['f', 'false', '0']);
const HEX = /^\\x((?:[0-9a-fA-F]{2})*)$/;
const UTC = /(?:\+00(?::?00)?|Z)$/;

export function booleanDigit(value: string): '1' | '0' {
  const v = value.toLowerCase();
  if (TRUE.has(v)) return '1';
  if (FALSE.has(v)) return '0';
  throw new ValueError(`${quote(value)} is not a boolean (t or f)`);
}

export function binaryHex(value: string): string {
  const match = HEX.exec(value);
  if (match?.[1] === undefined) throw new ValueError(`${quote(value)} is not binary (\\x and hex digits)`);
  return match[1];
}

/**
 * A text value bound for a binary column: `\x` and hex digits are the bytes they spell (the form every
 * format carries binary in, and the one PostgreSQL's bytea reads), any other text is its UTF-8 bytes.
 * Returned in the canonical `\x` form.
 */
export function textAsBinary(value: string): string {
  return HEX.test(value) ? value : `\\x${Buffer.from(value, 'utf8').toString('hex')}`;
}

export function utcText(value: string): string {
  const match = UTC.exec(value);
  if (!match) throw new ValueError(`${quote(value)} is not a UTC timestamp (ending +00)`);
  return value.slice(0, match.index).trimEnd();
}

/** The value as MySQL should read it: text, or hex for binary columns. */
export function mysqlText(value: string, type: ColumnType): string {
  switch (type) {
    case 'boolean':
      return booleanDigit(value);
    case 'binary':
      return binaryHex(value);
    case 'timestamptz':
      return utcText(value);
    default:
      return value;
  }
}

/** Throws a ValueError when the column would keep something other than the value. */
export type Guard = (text: string) => void;

const INTEGER_TYPES = new Set(['tinyint', 'smallint', 'mediumint', 'int', 'bigint', 'year']);
const TIME_TYPES = new Set(['time', 'datetime', 'timestamp']);
/** Zeros after the point are no loss: `12.00` is 12. */
const INTEGER = /^[+-]?\d+(?:\.0*)?$/;
const FRACTION = /\.(\d+)/;

export function guardFor(
  target: Pick<ColumnInfo, 'name' | 'dataType' | 'columnType' | 'fractionDigits'>,
): Guard | undefined {
  if (INTEGER_TYPES.has(target.dataType)) {
    return (text) => {
      if (!INTEGER.test(text))
        throw new ValueError(
          `${quote(text)} is not an integer, as column ${target.name} (${target.columnType}) needs`,
        );
    };
  }
  if (TIME_TYPES.has(target.dataType)) {
    const keep = target.fractionDigits ?? 0;
    return (text) => {
      const digits = FRACTION.exec(text)?.[1];
      if (digits !== undefined && /[1-9]/.test(digits.slice(keep))) {
        throw new ValueError(
          `${quote(text)} has more fractional seconds than column ${target.name} (${target.columnType}) keeps`,
        );
      }
    };
  }
  return undefined;
}

function quote(value: string): string {
  return JSON.stringify(value.length > 40 ? `${value.slice(0, 40)}...` : value);
}

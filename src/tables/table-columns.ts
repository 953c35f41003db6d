/**
 * How table data travels between connectors: a list of typed columns and a byte stream of
 * canonical CSV.
 *
 * Canonical CSV is PostgreSQL's `COPY ... (FORMAT csv, HEADER true)` dialect. PostgreSQL produces it
 * for free, and PostgreSQL's `COPY ... FROM` takes it back for free:
 * - RFC 4180 quoting, `,` as the delimiter, `"` as the quote, `\n` between records, and a header row
 *   of column names;
 * - NULL is an empty field with no quotes, and an empty string is `""`;
 * - every value is the store's text form of its logical type (the table below). Formats
 *   (src/formats) and table sinks parse that text. A source that cannot produce it directly, like
 *   MySQL, renders it.
 *
 * | type        | canonical text                                   | example                      |
 * | ----------- | ------------------------------------------------ | ---------------------------- |
 * | boolean     | `t` / `f` (sinks also accept true/false/1/0)     | `t`                          |
 * | int16/32/64 | decimal digits, exact                            | `-9223372036854775808`       |
 * | float32/64  | shortest round-trip decimal; `NaN`, `Infinity`   | `0.1`, `-Infinity`           |
 * | decimal     | exact decimal digits; `NaN` (PostgreSQL only)    | `12345678901234567890.123`   |
 * | text        | the characters, UTF-8                            | `naïve "quoted"`             |
 * | binary      | `\x` and lowercase hex                           | `\xdeadbeef`                 |
 * | date        | `YYYY-MM-DD` (PostgreSQL may add ` BC`)          | `2024-02-29`                 |
 * | time        | `HH:MM:SS[.ffffff]`                              | `13:45:00.5`                 |
 * | timestamp   | `YYYY-MM-DD HH:MM:SS[.ffffff]`, no zone          | `2024-02-29 13:45:00`        |
 * | timestamptz | the same in UTC, with `+00`                      | `2024-02-29 13:45:00+00`     |
 * | json        | the JSON document as text                        | `{"a":[1,2]}`                |
 * | uuid        | lowercase 8-4-4-4-12 hex                         | `a0eebc99-9c0b-4ef8-...`     |
 *
 * Details of PostgreSQL's own text, which is canonical by definition (its sessions set TimeZone UTC,
 * DateStyle ISO, hex bytea and shortest floats; src/connectors/postgres/postgres-client.ts):
 * - floats switch to exponent form from 1e15 (float32: 1e6) and below 1e-4: `1e+15`, `1.5e-05`,
 *   `3.4028235e+38`;
 * - decimal may also be `Infinity` / `-Infinity` (PostgreSQL 14+);
 * - time may be `24:00:00`; dates and timestamps may have 5+ digit years (`10000-01-01`), and
 *   ` BC` comes last, after the zone (`0044-03-15 12:00:00+00 BC`);
 * - jsonb prints its own normalized form (`{"a": [1, 2]}`), json the document as it was stored;
 * - types without a logical counterpart (interval, arrays, enums, inet, money, ...) travel as text,
 *   in PostgreSQL's text form (`1 day 02:03:04`, `{1,NULL,3}`).
 *
 * A decimal with a precision and scale never has more than `scale` digits after the point, nor more
 * than `precision - scale` before it: the stores that declare one guarantee it (PostgreSQL prints a
 * `numeric(12,2)` with exactly two, as MySQL and DuckDB do), and a producer must too. The Parquet
 * encoder relies on it: it reads such a column typed, and would round a third fraction digit.
 *
 * `infinity`/`-infinity` dates and timestamps are PostgreSQL's own. They pass through CSV and JSON
 * lines as text, and a format that has no way to hold them refuses them by name.
 */

export type ColumnType =
  | 'boolean'
  | 'int16'
  | 'int32'
  | 'int64'
  | 'float32'
  | 'float64'
  | 'decimal'
  | 'text'
  | 'binary'
  | 'date'
  | 'time'
  | 'timestamp'
  | 'timestamptz'
  | 'json'
  | 'uuid';

export const COLUMN_TYPES: readonly ColumnType[] = [
  'boolean',
  'int16',
  'int32',
  'int64',
  'float32',
  'float64',
  'decimal',
  'text',
  'binary',
  'date',
  'time',
  'timestamp',
  'timestamptz',
  'json',
  'uuid',
];

export interface TableColumn {
  name: string;
  type: ColumnType;
  /** decimal only: total digits and digits after the point; absent = unconstrained (PostgreSQL numeric). */
  precision?: number;
  scale?: number;
  /** false when the store guarantees no NULLs (NOT NULL); formats may then say so in their schema. */
  nullable: boolean;
  /** The store's own type, for messages and for a same-store copy that keeps it (`numeric(12,2)`). */
  nativeType?: string;
}

/**
 * Linked service properties, source and sink options for MySQL and MariaDB, compiled once, and the
 * one place where names and values are quoted into SQL.
 *
 * Names are taken literally and always quoted with backticks: `shop.Orders` reads `shop`.`Orders`.
 * Input that would need more than quoting (a backtick, a quote, a backslash, a control character, a
 * third dotted part, stray spaces) is refused rather than guessed at. Range bounds are never quoted
 * as free text: each must look like a value of its column's kind, so nothing but a number or a date
 * ever reaches the SQL.
 */
import { createHash } from 'node:crypto';
import type { ConnectionOptions } from 'mysql2';
import { FerryError } from '../../common/errors.ts';
import { MysqlProperties, MysqlSink, MysqlSource } from '../../protocol/stores.ts';
import type { ResolvedEndpointT } from '../../protocol/task.ts';
import { validator, type Validator } from '../../protocol/validate.ts';
import { mysqlMessage } from './mysql-errors.ts';

/** A host that does not answer is reported after this long instead of the OS's minutes. */
const CONNECT_TIMEOUT_MS = 10_000;
const DEFAULT_PORT = 3306;
const DEFAULT_PARTITIONS_WITH_COLUMN = 8;

/** A table named by its database and name, and how messages spell it (`db.table`). */
export interface TableRef {
  schemaName: string;
  tableName: string;
  table: string;
}

/** How a range or watermark column is bounded: integers exactly, numbers approximately, dates and times on the epoch. */
export type ColumnKind = 'integer' | 'number' | 'date' | 'datetime';

/** Where to connect, and what error messages may say about it (never the password). */
export interface MysqlTarget {
  linkedService: string;
  /** `host:port`, for messages. */
  address: string;
  /** The linked service's database: where an unqualified table is looked up. */
  database: string;
  /** Kept only so messages can be scrubbed of it. */
  password: string | undefined;
  connection: ConnectionOptions;
}

/** A table: `database.table` in messages (the database filled in when the pipeline left it out). */
export interface QualifiedTable extends TableRef {
  /** `` `database`.`table` `` */
  tableSql: string;
}

export interface CompiledMysqlSource extends QualifiedTable {
  /** Requested column names, undefined = all. */
  columns: string[] | undefined;
  partitionColumn: string | undefined;
  partitions: number;
  watermarkColumn: string | undefined;
}

export type MysqlSinkMode = 'append' | 'create' | 'overwrite';

export interface CompiledMysqlSink extends QualifiedTable {
  mode: MysqlSinkMode;
  /** Target column names, in the source's column order; undefined = the source's names. */
  columns: string[] | undefined;
  /** Where task commits are recorded. */
  ledger: QualifiedTable;
}

const DEFAULT_LEDGER = 'ferry_ledger';
/** `<table>__ferry_<8 hex>`: MySQL names stop at 64 characters, so a long table name is cut. */
const STAGING_INFIX = '__ferry_';
const STAGING_HEX = 8;
const MAX_STAGING_BASE = 64 - STAGING_INFIX.length - STAGING_HEX;

let validators:
  | {
      properties: Validator<typeof MysqlProperties>;
      source: Validator<typeof MysqlSource>;
      sink: Validator<typeof MysqlSink>;
    }
  | undefined;

function schemas(): NonNullable<typeof validators> {
  validators ??= {
    properties: validator(MysqlProperties),
    source: validator(MysqlSource),
    sink: validator(MysqlSink),
  };
  return validators;
}

export function compileMysqlTarget(endpoint: ResolvedEndpointT): MysqlTarget {
  const p = schemas().properties.parse(
    endpoint.properties,
    `mysql linked service "${endpoint.linkedService}"`,
  );
  const port = p.port ?? DEFAULT_PORT;
  return {
    linkedService: endpoint.linkedService,
    address: `${p.host}:${port}`,
    database: p.database,
    password: p.password,
    connection: {
      host: p.host,
      port,
      database: p.database,
      user: p.user,
      ...(p.password === undefined ? {} : { password: p.password }),
      // An empty object asks for TLS with mysql2's defaults: the certificate is verified.
      ...(p.ssl === true ? { ssl: {} } : {}),
      connectTimeout: CONNECT_TIMEOUT_MS,
      enableKeepAlive: true,
      charset: 'utf8mb4',
      // Values come back as the server's text, so nothing is rounded or shifted between time zones.
      dateStrings: true,
      supportBigNumbers: true,
      bigNumberStrings: true,
      decimalNumbers: false,
      multipleStatements: false,
    },
  };
}

export function compileMysqlSource(endpoint: ResolvedEndpointT, database: string): CompiledMysqlSource {
  const ls = endpoint.linkedService;
  const o = schemas().source.parse({ linkedService: ls, ...endpoint.options }, `mysql source "${ls}"`);
  if (o.partitionColumn === undefined && o.partitions !== undefined && o.partitions > 1) {
    throw new FerryError(
      'bad_request',
      mysqlMessage(ls, `partitions: ${o.partitions} needs a partitionColumn to split on`),
    );
  }
  return withStoreName(ls, () => {
    // Quoted here only to refuse odd names before any connection is made; queries quote them again.
    for (const name of [o.partitionColumn, o.watermarkColumn]) if (name !== undefined) quoteIdentifier(name);
    return {
      ...qualifiedTable(o.table, database),
      columns: checkColumnList(o.columns),
      partitionColumn: o.partitionColumn,
      partitions: o.partitions ?? (o.partitionColumn === undefined ? 1 : DEFAULT_PARTITIONS_WITH_COLUMN),
      watermarkColumn: o.watermarkColumn,
    };
  });
}

export function compileMysqlSink(endpoint: ResolvedEndpointT, database: string): CompiledMysqlSink {
  const ls = endpoint.linkedService;
  const o = schemas().sink.parse({ linkedService: ls, ...endpoint.options }, `mysql sink "${ls}"`);
  return withStoreName(ls, () => {
    const table = qualifiedTable(o.table, database);
    return {
      ...table,
      mode: o.mode ?? 'append',
      columns: checkColumnList(o.columns),
      // An unqualified ledger lives beside the table, wherever the table is.
      ledger: qualifiedTable(o.ledgerTable ?? DEFAULT_LEDGER, table.schemaName),
    };
  });
}

/**
 * The staging table an overwrite loads into: named by the activity run, so every attempt of every
 * task of one run finds the same one, and another run's leftovers are recognisable (isStagingOf).
 */
export function stagingTable(sink: QualifiedTable, runId: string, activity: string): QualifiedTable {
  const hex = createHash('sha256').update(`${runId}\n${activity}`).digest('hex').slice(0, STAGING_HEX);
  const name = `${[...sink.tableName].slice(0, MAX_STAGING_BASE).join('')}${STAGING_INFIX}${hex}`;
  return {
    schemaName: sink.schemaName,
    tableName: name,
    table: `${sink.schemaName}.${name}`,
    tableSql: `${quoteIdentifier(sink.schemaName)}.${quoteIdentifier(name)}`,
  };
}

/** Whether `name` is a staging table of `sink` (of any run). */
export function isStagingOf(sink: TableRef, name: string): boolean {
  const base = [...sink.tableName].slice(0, MAX_STAGING_BASE).join('');
  const rest = name.startsWith(base + STAGING_INFIX) ? name.slice(base.length + STAGING_INFIX.length) : '';
  return new RegExp(`^[0-9a-f]{${STAGING_HEX}}$`).test(rest);
}

function withStoreName<T>(linkedService: string, compile: () => T): T {
  try {
    return compile();
  } catch (err) {
    if (err instanceof FerryError) throw new FerryError(err.code, mysqlMessage(linkedService, err.message));
    throw err;
  }
}

function qualifiedTable(name: string, database: string): QualifiedTable {
  const [schemaName, tableName] = splitQualifiedName(name, database);
  return {
    schemaName,
    tableName,
    table: `${schemaName}.${tableName}`,
    tableSql: `${quoteIdentifier(schemaName)}.${quoteIdentifier(tableName)}`,
  };
}

/** Checks every name quotes, and none is named twice (MySQL names are case-insensitive). */
function checkColumnList(names: string[] | undefined): string[] | undefined {
  if (names === undefined) return undefined;
  const seen = new Set<string>();
  for (const name of names) {
    quoteIdentifier(name);
    if (seen.has(name.toLowerCase())) {
      throw new FerryError('bad_request', `column ${name} is listed twice`);
    }
    seen.add(name.toLowerCase());
  }
  return names;
}

// Backticks would need doubling, and quotes and backslashes change meaning with the server's
// sql_mode; nobody names a table like that on purpose, so such input is treated as a mistake.
const ODD_NAME = /[`'"\\\p{Cc}]/u;
const MAX_NAME_CHARS = 64;

/** `orders` -> `` `orders` ``. */
export function quoteIdentifier(name: string): string {
  if (name.length === 0) throw new FerryError('bad_request', 'a name is empty');
  if (ODD_NAME.test(name) || name.trim() !== name || [...name].length > MAX_NAME_CHARS) {
    throw new FerryError('bad_request', `${JSON.stringify(name)} is not a plain MySQL name`);
  }
  return `\`${name}\``;
}

/** `db.table` -> ['db', 'table']; `table` -> [database, 'table']. */
function splitQualifiedName(name: string, database: string): [string, string] {
  const parts = name.split('.');
  if (parts.length > 2 || parts.some((p) => p.length === 0)) {
    throw new FerryError('bad_request', `${JSON.stringify(name)} is not \`table\` or \`database.table\``);
  }
  const [first = '', second] = parts;
  const pair: [string, string] = second === undefined ? [database, first] : [first, second];
  for (const part of pair) quoteIdentifier(part);
  return pair;
}

const BOUND_SHAPES: Record<ColumnKind, RegExp> = {
  integer: /^-?\d{1,20}$/,
  number: /^-?\d+(\.\d+)?(e[+-]?\d+)?$/i,
  date: /^\d{4}-\d{2}-\d{2}$/,
  datetime: /^\d{4}-\d{2}-\d{2} \d{2}:\d{2}:\d{2}(\.\d{1,6})?$/,
};

/**
 * A range bound as SQL: numbers as bare literals (exact for integers of any size), dates and times
 * as quoted text the server converts to the column's type for the comparison.
 */
export function boundLiteral(kind: ColumnKind, value: string): string {
  if (!BOUND_SHAPES[kind].test(value)) {
    throw new FerryError('bad_request', `${JSON.stringify(value)} is not a ${kind} bound`);
  }
  return kind === 'date' || kind === 'datetime' ? `'${value}'` : value;
}

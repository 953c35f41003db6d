/**
 * The MySQL sink's plan-time work, before any copy task runs: the ledger table, the target table
 * (created from the source's columns in mode create, or overwrite when it is missing; mysql-types.ts
 * says which types), a check that the table can roll back and has the columns to load, and for an
 * overwrite the run's staging table.
 *
 * Every step is idempotent (IF NOT EXISTS), because the plan task may run more than once. An
 * overwrite drops the staging tables other runs left behind (a run that failed before its finalize):
 * they are named `<table>__ferry_<8 hex>`, and two overwrites of one table at once cannot both win
 * anyway; the older one fails on its missing staging table instead of half-replacing the table.
 */
import { FerryError } from '../../common/errors.ts';
import type { ResolvedEndpointT } from '../../protocol/task.ts';
import type { ActivityContext, SinkPreparation } from '../connector.ts';
import type { TableColumn } from '../../tables/table-columns.ts';
import { WRITING_SESSION, connectMysql, type MysqlSession } from './mysql-client.ts';
import { pickColumns, readColumns, tableExists } from './mysql-columns.ts';
import {
  compileMysqlSink,
  compileMysqlTarget,
  isStagingOf,
  quoteIdentifier,
  stagingTable,
  type CompiledMysqlSink,
  type QualifiedTable,
} from './mysql-config.ts';
import { mysqlMessage } from './mysql-errors.ts';
import { ensureLedger, trimLedger } from './mysql-ledger.ts';
import { mysqlTypeFor } from './mysql-types.ts';

export async function prepareMysqlSink(
  sink: ResolvedEndpointT,
  columns: TableColumn[] | undefined,
  ctx: ActivityContext,
): Promise<SinkPreparation> {
  const target = compileMysqlTarget(sink);
  const options = compileMysqlSink(sink, target.database);
  const ls = target.linkedService;
  const names = options.columns ?? columns?.map((c) => c.name);
  if (options.columns && columns && options.columns.length !== columns.length) {
    throw new FerryError(
      'bad_request',
      mysqlMessage(
        ls,
        `the sink lists ${options.columns.length} columns for ${columns.length} source columns (${columns.map((c) => c.name).join(', ')})`,
      ),
    );
  }
  const session = await connectMysql(target, ctx.signal, WRITING_SESSION);
  try {
    const exists = await tableExists(session, options, 'prepare');
    if (!exists && options.mode === 'append') {
      throw new FerryError(
        'store_object_missing',
        mysqlMessage(ls, `table "${options.table}" doesn't exist (prepare)`),
        { hint: "create it, or set the sink's mode: create to create it from the source's columns" },
      );
    }
    await ensureLedger(session, options.ledger, 'prepare');
    await trimLedger(session, options.ledger, 'prepare');
    await assertTransactional(session, options.ledger, ls);
    if (!exists) {
      if (!columns || !names) {
        throw new FerryError(
          'bad_request',
          mysqlMessage(
            ls,
            `table "${options.table}" doesn't exist, and the source does not describe its columns to create it from (prepare)`,
          ),
        );
      }
      await session.run(createTableSql(options, columns, names), 'create table');
    }
    await assertTransactional(session, options, ls);
    if (names) pickColumns(await readColumns(session, options, 'prepare'), names, options, ls, 'prepare');
    if (options.mode !== 'overwrite') return { finalize: false };

    const staging = stagingTable(options, ctx.runId, ctx.activity);
    await dropStaleStaging(session, options, staging);
    await session.run(
      `CREATE TABLE IF NOT EXISTS ${staging.tableSql} LIKE ${options.tableSql}`,
      'create staging table',
    );
    return { finalize: true };
  } finally {
    await session.close();
  }
}

/** `CREATE TABLE IF NOT EXISTS` with the source's columns under the sink's names. */
export function createTableSql(
  table: QualifiedTable,
  columns: readonly TableColumn[],
  names: readonly string[],
): string {
  const definitions = columns.map((column, i) => {
    // NULL is spelled out: without it, a TIMESTAMP column is NOT NULL on servers with
    // explicit_defaults_for_timestamp off.
    const nullability = column.nullable ? 'NULL' : 'NOT NULL';
    return `${quoteIdentifier(names[i] ?? column.name)} ${mysqlTypeFor(column)} ${nullability}`;
  });
  return `CREATE TABLE IF NOT EXISTS ${table.tableSql} (${definitions.join(', ')}) ENGINE = InnoDB DEFAULT CHARSET = utf8mb4`;
}

/** A table whose engine cannot roll back (MyISAM, Aria) would show half a load and keep a failed one. */
async function assertTransactional(
  session: MysqlSession,
  table: QualifiedTable,
  linkedService: string,
): Promise<void> {
  const rows = await session.query<{ engine: string | null; transactions: string | null }>(
    `SELECT t.ENGINE AS engine, e.TRANSACTIONS AS transactions
       FROM information_schema.TABLES t LEFT JOIN information_schema.ENGINES e ON e.ENGINE = t.ENGINE
      WHERE t.TABLE_SCHEMA = ? AND t.TABLE_NAME = ?`,
    [table.schemaName, table.tableName],
    'prepare',
  );
  const row = rows[0];
  // A view has no engine of its own; what it writes to decides.
  if (!row?.engine || row.transactions === 'YES') return;
  throw new FerryError(
    'bad_request',
    mysqlMessage(
      linkedService,
      `table "${table.table}" uses ${row.engine}, which cannot roll back a failed load; make it InnoDB (prepare)`,
    ),
  );
}

async function dropStaleStaging(
  session: MysqlSession,
  sink: CompiledMysqlSink,
  ours: QualifiedTable,
): Promise<void> {
  const rows = await session.query<{ name: string }>(
    'SELECT TABLE_NAME AS name FROM information_schema.TABLES WHERE TABLE_SCHEMA = ? AND TABLE_NAME LIKE ?',
    [sink.schemaName, `${sink.tableName.replace(/[\\%_]/g, (c) => `\\${c}`).slice(0, 60)}%`],
    'prepare',
  );
  for (const { name } of rows) {
    if (name === ours.tableName || !isStagingOf(sink, name)) continue;
    await session.run(
      `DROP TABLE IF EXISTS ${quoteIdentifier(sink.schemaName)}.${quoteIdentifier(name)}`,
      'drop stale staging table',
    );
  }
}

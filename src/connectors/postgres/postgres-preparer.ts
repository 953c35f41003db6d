/**
 * The PostgreSQL sink's plan-time work, before any copy task: the ledger, the target table, and for
 * an overwrite the activity run's staging table.
 *
 * - append: the target must exist. The loaded columns are checked now, so a typo fails the plan
 *   instead of every copy task.
 * - create: the target is created if it does not exist, from the source's columns
 *   (postgres-types.ts says which types), NOT NULL where the source guarantees it; then as append.
 * - overwrite: a missing target is created as above (empty until the finalize). The copies load a
 *   staging table `<table>__ferry_<hash of run and activity>`, made LIKE the target with its
 *   defaults, holding only the loaded columns (the target's others get their defaults, identities
 *   or generated values when the finalize moves the rows). Staging tables of other runs are left
 *   over by runs that failed or were cancelled; they are dropped, unless a live load holds one.
 *
 * prepare may run more than once (a retried plan task, even two at once on two nodes): it creates
 * only what is missing, in one transaction, under a transaction-scoped advisory lock per target
 * (which the finalize takes too) and one per ledger.
 */
import { FerryError } from '../../common/errors.ts';
import type { ResolvedEndpointT } from '../../protocol/task.ts';
import type { ActivityContext, SinkPreparation } from '../connector.ts';
import type { TableColumn } from '../../tables/table-columns.ts';
import { connectPostgres, type PostgresSession } from './postgres-client.ts';
import {
  compilePostgresSink,
  compilePostgresTarget,
  quoteIdentifier,
  type CompiledPostgresSink,
} from './postgres-config.ts';
import { postgresMessage, withStoreName } from './postgres-errors.ts';
import { createLedgerSql, trimLedger } from './postgres-ledger.ts';
import { isStagingName, resolveSinkTables, type SinkTables } from './postgres-sink-tables.ts';
import { logicalTypeSql, nativeTypeSql } from './postgres-types.ts';

const OPERATION = 'prepare';
/** How long dropping another run's staging table may wait for its lock before it counts as in use. */
const STALE_DROP_LOCK_TIMEOUT = '1s';

export async function preparePostgresSink(
  sink: ResolvedEndpointT,
  columns: TableColumn[] | undefined,
  ctx: ActivityContext,
): Promise<SinkPreparation> {
  const target = compilePostgresTarget(sink);
  const options = compilePostgresSink(sink);
  const ls = target.linkedService;
  if (options.mode === 'create' && columns === undefined) {
    throw new FerryError(
      'bad_request',
      postgresMessage(
        ls,
        `mode create needs the source's columns, and this source does not describe them (${OPERATION})`,
      ),
    );
  }
  const names = loadedNames(options, columns, ls);
  const session = await connectPostgres(target, ctx.signal);
  try {
    const tables = await resolveSinkTables(session, options, ctx, ls, OPERATION);
    // Worked out before the transaction, where a type name PostgreSQL cannot parse would abort
    // it, and only for a table to create. Checked again under the lock: another prepare may win.
    const definition =
      options.mode !== 'append' && columns !== undefined && !(await tableExists(session, tables.target))
        ? await tableDefinition(session, columns, names!, ls)
        : undefined;
    await session.query('BEGIN', [], OPERATION);
    // The target's lock, then the ledger's, which sinks of other tables may share: CREATE TABLE IF
    // NOT EXISTS run twice at once can still fail on the catalog's unique index.
    await session.query(
      'SELECT pg_advisory_xact_lock(hashtextextended($1, 0)), pg_advisory_xact_lock(hashtextextended($2, 0))',
      [`ferry sink ${tables.target}`, `ferry ledger ${tables.ledger}`],
      OPERATION,
    );
    await session.query(createLedgerSql(tables.ledger), [], OPERATION);
    await trimLedger(session, tables.ledger, OPERATION);
    let exists = await tableExists(session, tables.target);
    if (!exists && options.mode !== 'append' && definition !== undefined) {
      await session.query(`CREATE TABLE ${tables.target} (${definition})`, [], OPERATION);
      exists = true;
    }
    if (!exists) {
      throw new FerryError(
        'store_object_missing',
        postgresMessage(ls, `relation "${tables.shown}" does not exist (${OPERATION})`),
        {
          hint:
            options.mode === 'append'
              ? 'set the sink\'s mode to "create" to create it from the source\'s columns'
              : 'the source does not describe its columns, so the table cannot be created from them',
        },
      );
    }
    const targetColumns = await columnNames(session, tables.target);
    const missing = names?.find((n) => !targetColumns.includes(n));
    if (missing !== undefined) {
      throw new FerryError(
        'store_object_missing',
        postgresMessage(
          ls,
          `column "${missing}" of relation "${tables.shown}" does not exist (${OPERATION})`,
        ),
      );
    }
    if (options.mode === 'overwrite') await createStaging(session, tables, targetColumns, names);
    await session.query('COMMIT', [], OPERATION);
    if (options.mode === 'overwrite') await dropStaleStaging(session, tables);
    return { finalize: options.mode === 'overwrite' };
  } finally {
    await session.close(); // rolls back what did not commit
  }
}

/** The target column names the copies load: the sink's list, else the source's names. */
function loadedNames(
  options: CompiledPostgresSink,
  columns: TableColumn[] | undefined,
  ls: string,
): string[] | undefined {
  if (options.columns !== undefined && columns !== undefined && options.columns.length !== columns.length) {
    throw new FerryError(
      'bad_request',
      postgresMessage(
        ls,
        `columns lists ${options.columns.length} columns for a source of ${columns.length} (${columns.map((c) => c.name).join(', ')}) (${OPERATION})`,
      ),
    );
  }
  return options.columns ?? columns?.map((c) => c.name);
}

/** `"id" bigint NOT NULL, "amount" numeric(12,2)`: the source's columns under their target names. */
async function tableDefinition(
  session: PostgresSession,
  columns: TableColumn[],
  names: string[],
  ls: string,
): Promise<string> {
  const parts: string[] = [];
  for (const [i, column] of columns.entries()) {
    const name = withStoreName(ls, () => quoteIdentifier(names[i] ?? column.name));
    const type = (await nativeTypeSql(session, column)) ?? logicalTypeSql(column);
    parts.push(`${name} ${type}${column.nullable ? '' : ' NOT NULL'}`);
  }
  return parts.join(', ');
}

async function tableExists(session: PostgresSession, table: string): Promise<boolean> {
  const rows = await session.query<{ found: boolean }>(
    'SELECT to_regclass($1) IS NOT NULL AS found',
    [table],
    OPERATION,
  );
  return rows[0]?.found === true;
}

async function columnNames(session: PostgresSession, table: string): Promise<string[]> {
  const rows = await session.query<{ name: string }>(
    `SELECT attname AS name FROM pg_attribute
      WHERE attrelid = $1::regclass AND attnum > 0 AND NOT attisdropped ORDER BY attnum`,
    [table],
    OPERATION,
  );
  return rows.map((r) => r.name);
}

async function createStaging(
  session: PostgresSession,
  tables: SinkTables,
  targetColumns: readonly string[],
  names: readonly string[] | undefined,
): Promise<void> {
  if (await tableExists(session, tables.staging)) return; // an earlier prepare of this run made it
  await session.query(
    `CREATE TABLE ${tables.staging} (LIKE ${tables.target} INCLUDING DEFAULTS)`,
    [],
    OPERATION,
  );
  const unloaded = names === undefined ? [] : targetColumns.filter((c) => !names.includes(c));
  if (unloaded.length > 0) {
    await session.query(
      `ALTER TABLE ${tables.staging} ${unloaded.map((c) => `DROP COLUMN ${quoteIdentifier(c)}`).join(', ')}`,
      [],
      OPERATION,
    );
  }
}

/**
 * Drops the staging tables other runs of this target left behind. One that a load is writing right
 * now (another run of the same activity) keeps its lock; after a short wait it is left alone.
 */
async function dropStaleStaging(session: PostgresSession, tables: SinkTables): Promise<void> {
  const rows = await session.query<{ name: string }>(
    `SELECT c.relname AS name FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
      WHERE n.nspname = $1 AND c.relkind = 'r' AND starts_with(c.relname, $2) AND c.relname <> $3`,
    [tables.schema, tables.stagingPrefix, tables.stagingName],
    OPERATION,
  );
  const stale = rows.map((r) => r.name).filter((name) => isStagingName(tables, name));
  if (stale.length === 0) return;
  await session.query(`SET lock_timeout = '${STALE_DROP_LOCK_TIMEOUT}'`, [], OPERATION);
  for (const name of stale) {
    const table = `${quoteIdentifier(tables.schema)}.${quoteIdentifier(name)}`;
    await session.query(`DROP TABLE IF EXISTS ${table}`, [], OPERATION).catch(() => {});
  }
}

/**
 * The ledger: one row per committed task of an activity run, written in the same transaction as the
 * task's rows, so "these rows are in" and "this task is done" commit together or not at all. A
 * retried attempt finds its task's row and loads nothing; two attempts at once both load, but the
 * second insert of the same key waits for the first transaction and then fails on the duplicate key,
 * so only one of them commits. An overwrite's finalize records itself as task -1. Rows are kept
 * LEDGER_RETENTION_DAYS, long past the last attempt their run could make, and trimmed by every
 * prepare (trimLedger).
 */
import { LEDGER_RETENTION_DAYS } from '../connector.ts';
import type { MysqlSession } from './mysql-client.ts';
import { tableExists } from './mysql-columns.ts';
import type { QualifiedTable } from './mysql-config.ts';
import { isServerError } from './mysql-errors.ts';

export interface LedgerKey {
  runId: string;
  activity: string;
  taskIndex: number;
}

export interface LedgerEntry {
  rows: number;
  bytes: number;
  /** null for the finalize row. */
  sha256: string | null;
}

/**
 * Deletes the rows older than LEDGER_RETENTION_DAYS. A user who may not delete from the ledger keeps
 * every row: the failure is ignored, and the prepare goes on.
 */
export async function trimLedger(
  session: MysqlSession,
  ledger: QualifiedTable,
  operation: string,
): Promise<void> {
  await session
    .run(
      `DELETE FROM ${ledger.tableSql} WHERE \`committed_at\` < NOW(6) - INTERVAL ${LEDGER_RETENTION_DAYS} DAY`,
      operation,
    )
    .catch(() => undefined);
}

/** The finalize task's index in the ledger. */
export const FINALIZE_INDEX = -1;

export async function ensureLedger(
  session: MysqlSession,
  ledger: QualifiedTable,
  operation: string,
): Promise<void> {
  // Looked up first: a user allowed to write the ledger but not to create tables still gets through.
  if (await tableExists(session, ledger, operation)) return;
  // `rows` is a reserved word since MySQL 8.0: every column name is quoted.
  await session.run(
    `CREATE TABLE IF NOT EXISTS ${ledger.tableSql} (
       \`run_id\` VARCHAR(128) CHARACTER SET utf8mb4 COLLATE utf8mb4_bin NOT NULL,
       \`activity\` VARCHAR(128) CHARACTER SET utf8mb4 COLLATE utf8mb4_bin NOT NULL,
       \`task_index\` INT NOT NULL,
       \`rows\` BIGINT NOT NULL,
       \`bytes\` BIGINT NOT NULL,
       \`sha256\` CHAR(64) CHARACTER SET ascii NULL,
       \`committed_at\` DATETIME(6) NOT NULL DEFAULT CURRENT_TIMESTAMP(6),
       PRIMARY KEY (\`run_id\`, \`activity\`, \`task_index\`)
     ) ENGINE = InnoDB`,
    operation,
  );
}

export async function findLedgerEntry(
  session: MysqlSession,
  ledger: QualifiedTable,
  key: LedgerKey,
  operation: string,
): Promise<LedgerEntry | undefined> {
  const rows = await session.query<{ rows: string | number; bytes: string | number; sha256: string | null }>(
    `SELECT \`rows\`, \`bytes\`, \`sha256\` FROM ${ledger.tableSql}
      WHERE \`run_id\` = ? AND \`activity\` = ? AND \`task_index\` = ?`,
    [key.runId, key.activity, key.taskIndex],
    operation,
  );
  const row = rows[0];
  return row && { rows: Number(row.rows), bytes: Number(row.bytes), sha256: row.sha256 };
}

/** Records the task in the open transaction; 'taken' when another attempt's row is committed. */
export async function insertLedgerEntry(
  session: MysqlSession,
  ledger: QualifiedTable,
  key: LedgerKey,
  entry: LedgerEntry,
  operation: string,
): Promise<'inserted' | 'taken'> {
  try {
    await session.query(
      `INSERT INTO ${ledger.tableSql} (\`run_id\`, \`activity\`, \`task_index\`, \`rows\`, \`bytes\`, \`sha256\`)
       VALUES (?, ?, ?, ?, ?, ?)`,
      [key.runId, key.activity, key.taskIndex, entry.rows, entry.bytes, entry.sha256],
      operation,
    );
    return 'inserted';
  } catch (err) {
    if (isServerError(err, 'ER_DUP_ENTRY')) return 'taken';
    throw err;
  }
}

export async function updateLedgerEntry(
  session: MysqlSession,
  ledger: QualifiedTable,
  key: LedgerKey,
  entry: LedgerEntry,
  operation: string,
): Promise<void> {
  await session.query(
    `UPDATE ${ledger.tableSql} SET \`rows\` = ?, \`bytes\` = ?, \`sha256\` = ?
      WHERE \`run_id\` = ? AND \`activity\` = ? AND \`task_index\` = ?`,
    [entry.rows, entry.bytes, entry.sha256, key.runId, key.activity, key.taskIndex],
    operation,
  );
}

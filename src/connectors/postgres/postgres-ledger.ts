/**
 * The ledger: one row per committed task of an activity run, written in the same transaction as the
 * task's rows. Whoever finds a task's row knows its rows are in, so a retried or duplicated attempt
 * loads nothing more and reports the figures of the commit that counted. The primary key is what
 * makes two concurrent attempts safe: the second insert of a key waits for the first transaction,
 * then finds the row (the first committed) or takes its place (the first rolled back).
 *
 * Task index -1 records an overwrite's finalize, so a finalize that runs again does nothing.
 * Rows are kept LEDGER_RETENTION_DAYS, long past the last attempt their run could make, and trimmed
 * by every prepare (trimLedger).
 */
import { LEDGER_RETENTION_DAYS, type ActivityContext } from '../connector.ts';
import type { PostgresSession } from './postgres-client.ts';

export const FINALIZE_TASK = -1;

export interface LedgerEntry {
  rows: number;
  bytes: number;
  sha256: string;
}

export interface LedgerKey {
  runId: string;
  activity: string;
  taskIndex: number;
}

export function ledgerKey(ctx: ActivityContext, taskIndex: number): LedgerKey {
  return { runId: ctx.runId, activity: ctx.activity, taskIndex };
}

export function createLedgerSql(ledger: string): string {
  return `CREATE TABLE IF NOT EXISTS ${ledger} (
    run_id text NOT NULL,
    activity text NOT NULL,
    task_index int NOT NULL,
    rows bigint,
    sha256 text,
    bytes bigint,
    committed_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (run_id, activity, task_index))`;
}

/**
 * Deletes the rows older than LEDGER_RETENTION_DAYS, inside the caller's transaction. A user who may
 * not delete from the ledger keeps every row: the failure is rolled back to a savepoint, and the
 * prepare goes on.
 */
export async function trimLedger(session: PostgresSession, ledger: string, operation: string): Promise<void> {
  await session.query('SAVEPOINT ferry_ledger_trim', [], operation);
  try {
    await session.query(
      `DELETE FROM ${ledger} WHERE committed_at < now() - make_interval(days => $1)`,
      [LEDGER_RETENTION_DAYS],
      operation,
    );
    await session.query('RELEASE SAVEPOINT ferry_ledger_trim', [], operation);
  } catch {
    await session.query('ROLLBACK TO SAVEPOINT ferry_ledger_trim', [], operation);
  }
}

const KEY_WHERE = 'run_id = $1 AND activity = $2 AND task_index = $3';

function keyParams(key: LedgerKey): unknown[] {
  return [key.runId, key.activity, key.taskIndex];
}

export async function findLedgerEntry(
  session: PostgresSession,
  ledger: string,
  key: LedgerKey,
  operation: string,
): Promise<LedgerEntry | undefined> {
  const rows = await session.query<{ rows: string | null; bytes: string | null; sha256: string | null }>(
    `SELECT rows, bytes, sha256 FROM ${ledger} WHERE ${KEY_WHERE}`,
    keyParams(key),
    operation,
  );
  const row = rows[0];
  if (row === undefined) return undefined;
  return { rows: Number(row.rows ?? 0), bytes: Number(row.bytes ?? 0), sha256: row.sha256 ?? '' };
}

/**
 * Records the key in the current transaction; false when it is already recorded by a committed
 * transaction (waiting first for one that is still open).
 */
export async function insertLedgerEntry(
  session: PostgresSession,
  ledger: string,
  key: LedgerKey,
  entry: Partial<LedgerEntry>,
  operation: string,
): Promise<boolean> {
  const rows = await session.query(
    `INSERT INTO ${ledger} (run_id, activity, task_index, rows, bytes, sha256, committed_at)
     VALUES ($1, $2, $3, $4, $5, $6, now())
     ON CONFLICT (run_id, activity, task_index) DO NOTHING RETURNING 1`,
    [...keyParams(key), entry.rows ?? null, entry.bytes ?? null, entry.sha256 ?? null],
    operation,
  );
  return rows.length === 1;
}

/** Replaces the figures of a key this transaction recorded (a task with several objects). */
export async function updateLedgerEntry(
  session: PostgresSession,
  ledger: string,
  key: LedgerKey,
  entry: LedgerEntry,
  operation: string,
): Promise<void> {
  await session.query(
    `UPDATE ${ledger} SET rows = $4, bytes = $5, sha256 = $6 WHERE ${KEY_WHERE}`,
    [...keyParams(key), entry.rows, entry.bytes, entry.sha256],
    operation,
  );
}

/**
 * An overwrite's finalize, once every copy task has loaded the staging table: replace the table's
 * rows with the staging table's, then drop it.
 *
 * In one transaction: the ledger row of task -1 first (a concurrent finalize waits on that key, then
 * fails on the duplicate and does nothing), DELETE FROM the table, INSERT ... SELECT from staging,
 * COMMIT. Readers see the old rows or the new ones, never none or both. Then DROP the staging table.
 *
 * Order: in MySQL, DDL commits the open transaction implicitly, so the DROP must come after the
 * COMMIT, never inside. Dropped after the commit, nothing is lost whatever fails: a crash before the
 * COMMIT leaves the old rows and the staging table for the retry; a crash between COMMIT and DROP
 * leaves the ledger row, so the retry only drops the staging table; a finalize run twice finds the
 * ledger row and changes nothing.
 *
 * Why not RENAME TABLE (an atomic swap, no copy): it is DDL, so it cannot commit together with the
 * ledger row, and a crash between the two leaves no record of whether the swap happened; and it
 * replaces the table's identity (grants on it, triggers, foreign keys pointing at it). DELETE and
 * INSERT copy the rows once more, a cost paid for exactly-once.
 */
import type { ResultSetHeader } from 'mysql2';
import type { ResolvedEndpointT } from '../../protocol/task.ts';
import type { ActivityContext } from '../connector.ts';
import { WRITING_SESSION, connectMysql } from './mysql-client.ts';
import { compileMysqlSink, compileMysqlTarget, stagingTable } from './mysql-config.ts';
import { FINALIZE_INDEX, findLedgerEntry, insertLedgerEntry, updateLedgerEntry } from './mysql-ledger.ts';

export async function finalizeMysqlSink(sink: ResolvedEndpointT, ctx: ActivityContext): Promise<void> {
  const target = compileMysqlTarget(sink);
  const options = compileMysqlSink(sink, target.database);
  if (options.mode !== 'overwrite') return;
  const staging = stagingTable(options, ctx.runId, ctx.activity);
  const key = { runId: ctx.runId, activity: ctx.activity, taskIndex: FINALIZE_INDEX };
  const session = await connectMysql(target, ctx.signal, WRITING_SESSION);
  try {
    const done = await findLedgerEntry(session, options.ledger, key, 'finalize');
    if (!done) {
      await session.run('START TRANSACTION', 'finalize');
      try {
        const entry = { rows: 0, bytes: 0, sha256: null };
        if ((await insertLedgerEntry(session, options.ledger, key, entry, 'finalize')) === 'inserted') {
          await session.run(`DELETE FROM ${options.tableSql}`, `finalize: empty ${options.table}`);
          const moved = await session.run<ResultSetHeader>(
            `INSERT INTO ${options.tableSql} SELECT * FROM ${staging.tableSql}`,
            `finalize: fill ${options.table} from ${staging.table}`,
          );
          await updateLedgerEntry(
            session,
            options.ledger,
            key,
            { ...entry, rows: moved.affectedRows },
            'finalize',
          );
          await session.run('COMMIT', 'finalize');
        } else {
          await session.run('ROLLBACK', 'finalize');
        }
      } catch (err) {
        await session.run('ROLLBACK', 'finalize').catch(() => undefined);
        throw err;
      }
    }
    await session.run(`DROP TABLE IF EXISTS ${staging.tableSql}`, 'finalize: drop staging table');
  } finally {
    await session.close();
  }
}

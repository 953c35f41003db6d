/**
 * The overwrite's finalize task, once every copy task has loaded its rows into the activity run's
 * staging table: in one transaction, delete the target's rows, insert the staging table's, drop the
 * staging table and record the finalize in the ledger (task -1). Readers see the old rows until the
 * commit and the new ones after it, never a mix or an empty table. A finalize that runs again finds
 * its ledger row and does nothing.
 *
 * DELETE and INSERT rather than renaming the staging table over the target: the target stays the
 * same table, so its grants, indexes, constraints, triggers, the views and foreign keys that point
 * at it, and its publications all survive; a renamed-in table would have none of them. TRUNCATE
 * would be cheaper, but it locks readers out until the commit and is not MVCC-safe (a concurrent
 * snapshot would see an empty table). The price is a DELETE's cost and dead rows for vacuum.
 */
import type { ResolvedEndpointT } from '../../protocol/task.ts';
import type { ActivityContext } from '../connector.ts';
import { connectPostgres } from './postgres-client.ts';
import { compilePostgresSink, compilePostgresTarget, quoteIdentifier } from './postgres-config.ts';
import { FINALIZE_TASK, findLedgerEntry, insertLedgerEntry, ledgerKey } from './postgres-ledger.ts';
import { resolveSinkTables } from './postgres-sink-tables.ts';

const OPERATION = 'finalize';

export async function finalizePostgresSink(sink: ResolvedEndpointT, ctx: ActivityContext): Promise<void> {
  const target = compilePostgresTarget(sink);
  const options = compilePostgresSink(sink);
  if (options.mode !== 'overwrite') return;
  const session = await connectPostgres(target, ctx.signal);
  try {
    const tables = await resolveSinkTables(session, options, ctx, target.linkedService, OPERATION);
    const key = ledgerKey(ctx, FINALIZE_TASK);
    await session.query('BEGIN', [], OPERATION);
    // The same lock as prepare's: two finalize attempts at once run one after the other.
    await session.query(
      'SELECT pg_advisory_xact_lock(hashtextextended($1, 0))',
      [`ferry sink ${tables.target}`],
      OPERATION,
    );
    if (await findLedgerEntry(session, tables.ledger, key, OPERATION)) return; // done before
    // The staging table holds the loaded columns; the target computes its generated ones itself.
    const rows = await session.query<{ name: string }>(
      `SELECT s.attname AS name FROM pg_attribute s
         JOIN pg_attribute t ON t.attrelid = $2::regclass AND t.attname = s.attname
                            AND t.attnum > 0 AND NOT t.attisdropped AND t.attgenerated = ''
        WHERE s.attrelid = $1::regclass AND s.attnum > 0 AND NOT s.attisdropped
        ORDER BY s.attnum`,
      [tables.staging, tables.target],
      OPERATION,
    );
    const columns = rows.map((r) => quoteIdentifier(r.name)).join(', ');
    await session.query(`DELETE FROM ${tables.target}`, [], OPERATION);
    // Loaded identity values are kept, as COPY keeps them in the other modes.
    const inserted = await session.execute(
      `INSERT INTO ${tables.target} (${columns}) OVERRIDING SYSTEM VALUE SELECT ${columns} FROM ${tables.staging}`,
      [],
      OPERATION,
    );
    await session.query(`DROP TABLE ${tables.staging}`, [], OPERATION);
    await insertLedgerEntry(session, tables.ledger, key, { rows: inserted }, OPERATION);
    await session.query('COMMIT', [], OPERATION);
  } finally {
    await session.close(); // rolls back what did not commit
  }
}

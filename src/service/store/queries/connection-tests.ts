/**
 * Connection tests of linked services, from the API call that asks for one to the node's report
 * (migration 004). The service's policy (which node, what to seal) is in src/service/connection-tests.ts.
 */
import type { Kysely } from 'kysely';
import type { ConnectionTestsTable, Schema } from '../schema.ts';
import type { ConnectionTestReportT } from '../../../protocol/agent.ts';
import { FerryError } from '../../../common/errors.ts';
import { JSON_COLUMNS } from '../json-column.ts';

export async function createConnectionTest(db: Kysely<Schema>, row: ConnectionTestsTable): Promise<void> {
  // Rows whose API call died with its replica go with the next test asked for.
  await db.deleteFrom('connection_tests').where('expires_at', '<', row.created_at).execute();
  await db.insertInto('connection_tests').values(row).execute();
}

/**
 * The tests to hand `nodeId` now: unanswered, not expired, and not handed out within `redeliverMs`
 * (a node that lost the heartbeat reply gets them again; one that has them already ignores a
 * second copy). Marks them handed out.
 */
export async function takeConnectionTests(
  db: Kysely<Schema>,
  nodeId: string,
  now: number,
  redeliverMs: number,
  max: number,
): Promise<ConnectionTestsTable[]> {
  const due = await db
    .selectFrom('connection_tests')
    .selectAll()
    .where('node_id', '=', nodeId)
    .where('report_json', 'is', null)
    .where('expires_at', '>', now)
    .where((eb) => eb.or([eb('delivered_at', 'is', null), eb('delivered_at', '<', now - redeliverMs)]))
    .orderBy('created_at')
    .limit(max)
    .execute();
  if (due.length === 0) return [];
  await db
    .updateTable('connection_tests')
    .set({ delivered_at: now })
    .where(
      'id',
      'in',
      due.map((t) => t.id),
    )
    .execute();
  return due;
}

/** Records a node's report. Only the node the test was handed to may answer, and only once. */
export async function recordConnectionTestReport(
  db: Kysely<Schema>,
  testId: string,
  nodeId: string,
  report: ConnectionTestReportT,
): Promise<void> {
  const updated = await db
    .updateTable('connection_tests')
    .set({ report_json: JSON.stringify(report) })
    .where('id', '=', testId)
    .where('node_id', '=', nodeId)
    .where('report_json', 'is', null)
    .executeTakeFirst();
  if (Number(updated.numUpdatedRows) === 0)
    // The same answer for a test that never existed, another node's, and one answered already.
    throw new FerryError('not_found', `no connection test ${testId} is waiting for this node's answer`);
}

/** The node's report; null while it has not answered (or the test is gone). */
export async function connectionTestReport(
  db: Kysely<Schema>,
  testId: string,
): Promise<ConnectionTestReportT | null> {
  const row = await db
    .selectFrom('connection_tests')
    .select('report_json')
    .where('id', '=', testId)
    .executeTakeFirst();
  const json = row?.report_json ?? null;
  return json === null ? null : JSON_COLUMNS.connectionTestReport.read(json, testId);
}

export async function deleteConnectionTest(db: Kysely<Schema>, testId: string): Promise<void> {
  await db.deleteFrom('connection_tests').where('id', '=', testId).execute();
}

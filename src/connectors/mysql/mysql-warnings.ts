/**
 * A load must fail rather than leave different data than it was given. LOAD DATA LOCAL cannot stop
 * the client mid-file, so the server turns every bad value (truncated text, an out-of-range number,
 * a bad date, a duplicate key) into a warning and goes on, even in strict mode; an INSERT rounds a
 * DECIMAL with only a note. So every load statement's warnings are read, and any of them fails the
 * task, except notes that say nothing about the data.
 */
import type { ResultSetHeader } from 'mysql2';
import { FerryError } from '../../common/errors.ts';
import type { MysqlSession } from './mysql-client.ts';
import { mysqlMessage } from './mysql-errors.ts';

/** Notes about the statement, not the rows: 1592, unsafe for statement-based binary logging. */
const HARMLESS_NOTES = new Set([1592]);
const SHOWN = 3;

interface Warning {
  Level: string;
  Code: number;
  Message: string;
}

export async function assertNoWarnings(
  session: MysqlSession,
  result: ResultSetHeader,
  linkedService: string,
  operation: string,
): Promise<void> {
  if (!result.warningStatus) return;
  const warnings = await session.run<Warning[]>(`SHOW WARNINGS LIMIT ${SHOWN + 5}`, operation);
  const serious = warnings.filter((w) => !(w.Level === 'Note' && HARMLESS_NOTES.has(Number(w.Code))));
  if (serious.length === 0) return;
  const shown = serious.slice(0, SHOWN).map((w) => w.Message);
  const more = result.warningStatus - shown.length;
  const text = `${shown.join('; ')}${more > 0 ? `; and ${more} more warnings` : ''}`;
  throw new FerryError('store_error', mysqlMessage(linkedService, `${text} (${operation})`), {
    retryable: false,
  });
}

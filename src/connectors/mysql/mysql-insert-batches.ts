/**
 * The path for servers that refuse LOAD DATA LOCAL (local_infile off): multi-row INSERTs of up to
 * BATCH_BYTES each, values escaped by mysql2 (the writing session keeps backslash escapes on),
 * binary values as X'..' literals. Each batch is awaited before the next records are read, so the
 * source is held to the server's pace. Strict mode fails a batch on a bad value; notes (a DECIMAL
 * rounded) are caught by the warnings check.
 */
import mysql, { type ResultSetHeader } from 'mysql2';
import { FerryError } from '../../common/errors.ts';
import type { CanonicalRecord } from './mysql-canonical-input.ts';
import type { MysqlSession } from './mysql-client.ts';
import { quoteIdentifier } from './mysql-config.ts';
import { mysqlMessage } from './mysql-errors.ts';
import { RecordError, type LoadTarget } from './mysql-load-data.ts';
import { ValueError, mysqlText } from './mysql-values.ts';
import { assertNoWarnings } from './mysql-warnings.ts';

const BATCH_BYTES = 4 * 1024 * 1024;
/** Room in a packet for the statement's own bytes. */
const PACKET_SLACK = 1024;

/** Inserts every record; returns the rows the server says it inserted. */
export async function insertBatches(
  session: MysqlSession,
  target: LoadTarget,
  records: AsyncIterable<CanonicalRecord>,
  maxPacket: number,
  linkedService: string,
  operation: string,
): Promise<number> {
  const head = `INSERT INTO ${target.table.tableSql} (${target.names.map(quoteIdentifier).join(', ')}) VALUES `;
  const limit = Math.min(BATCH_BYTES, maxPacket - PACKET_SLACK);
  let tuples: string[] = [];
  let size = Buffer.byteLength(head);
  let first = 1;
  let row = 0;
  let inserted = 0;

  const flush = async (): Promise<void> => {
    if (tuples.length === 0) return;
    const what = `${operation}, rows ${first}-${first + tuples.length - 1}`;
    const result = await session.run<ResultSetHeader>(head + tuples.join(','), what);
    await assertNoWarnings(session, result, linkedService, what);
    inserted += result.affectedRows;
    first += tuples.length;
    tuples = [];
    size = Buffer.byteLength(head);
  };

  for await (const record of records) {
    row++;
    const tuple = sqlTuple(record, target, row);
    const bytes = Buffer.byteLength(tuple) + 1;
    if (Buffer.byteLength(head) + bytes > maxPacket - PACKET_SLACK) {
      throw new FerryError(
        'store_error',
        mysqlMessage(
          linkedService,
          `row ${row} needs ${bytes} bytes in an INSERT, more than the server's max_allowed_packet (${maxPacket}) (${operation})`,
        ),
        { retryable: false },
      );
    }
    if (size + bytes > limit) await flush();
    tuples.push(tuple);
    size += bytes;
  }
  await flush();
  return inserted;
}

function sqlTuple(record: CanonicalRecord, target: LoadTarget, row: number): string {
  const values = record.map((value, i) => {
    if (value === null || value === undefined) return 'NULL';
    const type = target.types[i] ?? 'text';
    let text: string;
    try {
      text = mysqlText(value, type);
      target.guards[i]?.(text);
    } catch (err) {
      if (err instanceof ValueError) throw new RecordError(row, target.names[i] ?? String(i), err);
      throw err;
    }
    if (type === 'binary') return `X'${text}'`;
    if (type === 'boolean') return text;
    return mysql.escape(text);
  });
  return `(${values.join(',')})`;
}

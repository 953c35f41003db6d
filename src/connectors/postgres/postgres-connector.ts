/**
 * The PostgreSQL store. As a source: a table (or some of its columns) read whole or in ranges of a
 * partition column, each range one task, optionally only the rows above a watermark, rendered as
 * canonical CSV by the server's COPY. As a sink: rows loaded by COPY FROM in one transaction per
 * task, recorded in a ledger so a task's rows land exactly once (postgres-writer.ts).
 */
import type { SinkConnector, SourceConnector } from '../connector.ts';
import { checkPostgresRead, checkPostgresWrite } from './postgres-check.ts';
import { finalizePostgresSink } from './postgres-finalizer.ts';
import { describePostgres, planPostgres } from './postgres-planner.ts';
import { preparePostgresSink } from './postgres-preparer.ts';
import { readPostgres } from './postgres-reader.ts';
import { openPostgresWriter } from './postgres-writer.ts';

export const postgresSource: SourceConnector = {
  plan: planPostgres,
  read: readPostgres,
  describe: describePostgres,
  checkRead: checkPostgresRead,
};

export const postgresSink: SinkConnector = {
  accepts: 'table',
  prepare: preparePostgresSink,
  open: openPostgresWriter,
  finalize: finalizePostgresSink,
  checkWrite: checkPostgresWrite,
};

/**
 * The MySQL and MariaDB store.
 * - As a source: a table (or some of its columns) read whole or in ranges of a partition column, each
 *   range one task, streamed row by row and rendered as canonical CSV; incremental by a watermark
 *   column.
 * - As a sink: rows loaded with LOAD DATA LOCAL (or INSERT batches) in one transaction per task,
 *   recorded in a ledger table; append, create, or overwrite through a staging table.
 */
import type { SinkConnector, SourceConnector } from '../connector.ts';
import { checkMysqlRead, checkMysqlWrite } from './mysql-check.ts';
import { finalizeMysqlSink } from './mysql-finalizer.ts';
import { describeMysql, planMysql } from './mysql-planner.ts';
import { prepareMysqlSink } from './mysql-preparer.ts';
import { readMysql } from './mysql-reader.ts';
import { openMysqlWriter } from './mysql-writer.ts';

export const mysqlSource: SourceConnector = {
  plan: planMysql,
  read: readMysql,
  describe: describeMysql,
  checkRead: checkMysqlRead,
};

export const mysqlSink: SinkConnector = {
  accepts: 'table',
  prepare: prepareMysqlSink,
  open: (sink, ctx) => openMysqlWriter(sink, ctx),
  finalize: finalizeMysqlSink,
  checkWrite: checkMysqlWrite,
};

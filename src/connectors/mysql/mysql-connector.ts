/**
 * The MySQL and MariaDB store, as a source: a table (or some of its columns) read whole or in ranges
 * of a partition column, each range one task, streamed row by row and rendered as CSV.
 */
import type { SourceConnector } from '../connector.ts';
import { planMysql } from './mysql-planner.ts';
import { readMysql } from './mysql-reader.ts';

export const mysqlSource: SourceConnector = {
  plan: planMysql,
  read: readMysql,
};

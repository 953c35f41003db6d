/**
 * The PostgreSQL store, as a source: a table (or some of its columns) read whole or in ranges of a
 * partition column, each range one task, rendered as CSV by the server's COPY.
 */
import type { SourceConnector } from '../connector.ts';
import { planPostgres } from './postgres-planner.ts';
import { readPostgres } from './postgres-reader.ts';

export const postgresSource: SourceConnector = {
  plan: planPostgres,
  read: readPostgres,
};

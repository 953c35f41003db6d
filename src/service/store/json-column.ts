/**
 * JSON kept in the store's text columns, read back in one place: parsed, and checked against the
 * protocol schema of what Ferry wrote there. A value Ferry did not write (edited by hand, cut short,
 * written by another version) becomes an error that names its table, column and row, rather than a
 * wrong shape travelling on into a task, an election or a view.
 *
 * The error never quotes the value: a column may hold secrets (the sealed secrets, once opened), and
 * the message reaches API callers.
 */
import { Type, type Static, type TSchema } from 'typebox';
import { validator, type Validator } from '../../protocol/validate.ts';
import { FerryError } from '../../common/errors.ts';
import { Metrics, PeerReach, ConnectionTestReport } from '../../protocol/agent.ts';
import { CopyActivity, PipelineSpec } from '../../protocol/pipeline.ts';
import { EndpointProperties, TaskResult, TaskWork } from '../../protocol/task.ts';
import { TlsReport } from '../../protocol/encryption.ts';
import type { Schema } from './schema.ts';
import { NodeCredentials } from '../../protocol/credentials.ts';

export interface JsonColumn<T extends TSchema> {
  readonly table: string;
  readonly column: string;
  /**
   * The stored text as the value it holds; throws an `internal` FerryError (not retryable: reading
   * again finds the same) naming `table.column` and `row` (the row's id or name) when it is not JSON
   * or not of the column's schema.
   */
  read(text: string, row: string): Static<T>;
}

/** A JSON column of `table`, holding values of `schema`. The schema is compiled at first use. */
export function jsonColumn<Table extends keyof Schema, T extends TSchema>(
  table: Table,
  column: keyof Schema[Table] & string,
  schema: T,
): JsonColumn<T> {
  let compiled: Validator<T> | undefined;
  const malformed = (row: string, problem: string, cause?: unknown): FerryError =>
    new FerryError('internal', `the store holds a malformed ${table}.${column} in row ${row}: ${problem}`, {
      retryable: false,
      hint: 'the row was changed outside Ferry, or by another version of it: restore it from a backup, or delete the object and create it again',
      cause,
    });
  return {
    table,
    column,
    read(text: string, row: string): Static<T> {
      let value: unknown;
      try {
        value = JSON.parse(text);
      } catch (err) {
        throw malformed(row, 'it is not JSON', err);
      }
      compiled ??= validator(schema);
      if (compiled.check(value)) return value;
      throw malformed(row, compiled.problems(value).join('; '));
    },
  };
}

/** Every JSON column of the store (schema.ts), with the schema of what is written to it. */
export const JSON_COLUMNS = {
  /** The linked service's properties without its secret ones (linked-service-secrets.ts). */
  linkedServiceProperties: jsonColumn('linked_services', 'properties_json', EndpointProperties),
  /** The secret properties, once opened with the master key. */
  linkedServiceSecrets: jsonColumn('linked_services', 'secret_sealed', EndpointProperties),
  pipelineSpec: jsonColumn('pipelines', 'spec_json', PipelineSpec),
  /** The activity as applied (no secrets). */
  activitySpec: jsonColumn('activity_runs', 'spec_json', CopyActivity),
  taskWork: jsonColumn('tasks', 'work_json', TaskWork),
  taskResult: jsonColumn('tasks', 'result_json', TaskResult),
  /** Registration stores `{}`; every heartbeat all of them. */
  nodeMetrics: jsonColumn('nodes', 'metrics_json', Type.Partial(Metrics)),
  nodeReach: jsonColumn('nodes', 'reach_json', Type.Array(PeerReach)),
  /** What the node reports holding of the gateway's credentials (no secret: versions and a public key). */
  nodeCredentials: jsonColumn('nodes', 'credentials_json', NodeCredentials),
  connectionTestReport: jsonColumn('connection_tests', 'report_json', ConnectionTestReport),
  /** The node's node-to-node transport as it last reported it (null from older nodes). */
  nodeTlsReport: jsonColumn('nodes', 'tls_report_json', TlsReport),
} as const;

/**
 * The tables a PostgreSQL sink touches, named once per session: the target, the ledger beside it,
 * and (overwrite) the activity run's staging table `<table>__ferry_<8 hex>`.
 *
 * A target written without a schema is found through the search_path; when it does not exist yet,
 * it goes where CREATE TABLE would put it (current_schema()). The ledger and the staging table live
 * in the target's schema, so the permissions that let a role write the target are usually the ones
 * it needs for them too. The staging table's name derives from the run and the activity, so every
 * task of one activity run computes the same name without asking anyone, and a retried plan
 * prepares the same table again.
 */
import { createHash } from 'node:crypto';
import { FerryError } from '../../common/errors.ts';
import type { ActivityContext } from '../connector.ts';
import type { PostgresSession } from './postgres-client.ts';
import { quoteIdentifier, type CompiledPostgresSink } from './postgres-config.ts';
import { postgresMessage, withStoreName } from './postgres-errors.ts';

const MAX_NAME_BYTES = 63;
const STAGING_MARK = '__ferry_';
const HASH_CHARS = 8;
const STAGING_HASH = new RegExp(`^[0-9a-f]{${HASH_CHARS}}$`);

export interface SinkTables {
  schema: string;
  /** `"schema"."table"` */
  target: string;
  /** `schema.table`, for messages. */
  shown: string;
  /** `"schema"."ferry_ledger"` */
  ledger: string;
  /** This activity run's staging table, bare and quoted; only overwrite uses it. */
  stagingName: string;
  staging: string;
  /** What every staging table of this target starts with. */
  stagingPrefix: string;
}

/** Whether `name` is one of the target's staging tables (of any run). */
export function isStagingName(tables: SinkTables, name: string): boolean {
  return name.startsWith(tables.stagingPrefix) && STAGING_HASH.test(name.slice(tables.stagingPrefix.length));
}

export async function resolveSinkTables(
  session: PostgresSession,
  sink: CompiledPostgresSink,
  ctx: ActivityContext,
  linkedService: string,
  operation: string,
): Promise<SinkTables> {
  let schema = sink.target.schema;
  if (schema === undefined) {
    const rows = await session.query<{ schema: string | null }>(
      `SELECT coalesce(
         (SELECT n.nspname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
           WHERE c.oid = to_regclass($1)),
         current_schema()) AS schema`,
      [quoteIdentifier(sink.target.name)],
      operation,
    );
    schema = rows[0]?.schema ?? undefined;
    if (schema === undefined) {
      throw new FerryError(
        'store_object_missing',
        postgresMessage(
          linkedService,
          `no schema on the search_path holds "${sink.target.name}" (${operation})`,
        ),
      );
    }
  }
  // A schema name from the catalog may be one quoting cannot hold; refused, with the store's name.
  const schemaSql = withStoreName(linkedService, () => quoteIdentifier(schema));
  const q = (name: string): string => `${schemaSql}.${quoteIdentifier(name)}`;
  const prefix = `${truncateBytes(sink.target.name, MAX_NAME_BYTES - STAGING_MARK.length - HASH_CHARS)}${STAGING_MARK}`;
  const hash = createHash('sha256')
    .update(`${ctx.runId}\n${ctx.activity}`)
    .digest('hex')
    .slice(0, HASH_CHARS);
  const stagingName = `${prefix}${hash}`;
  return {
    schema,
    target: q(sink.target.name),
    shown: `${schema}.${sink.target.name}`,
    ledger:
      sink.ledger.schema === undefined
        ? q(sink.ledger.name)
        : `${quoteIdentifier(sink.ledger.schema)}.${quoteIdentifier(sink.ledger.name)}`,
    stagingName,
    staging: q(stagingName),
    stagingPrefix: prefix,
  };
}

/** The longest prefix of `text` that fits in `bytes` UTF-8 bytes without splitting a character. */
function truncateBytes(text: string, bytes: number): string {
  let out = '';
  for (const ch of text) {
    if (Buffer.byteLength(out + ch) > bytes) break;
    out += ch;
  }
  return out;
}

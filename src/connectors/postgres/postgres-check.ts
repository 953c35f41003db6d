/**
 * The PostgreSQL store's connection test, with the linked service's database (options are ignored).
 * Read: connects and asks the server its version, the role and the database. Write: inside one
 * transaction, creates a table named by the probe in the role's current schema (the first of its
 * search_path that exists), inserts a row, and rolls back. Nothing is left behind even if the node
 * dies midway: the server rolls back the transaction of a connection that is gone.
 *
 * A sink needs as much: its prepare creates a ledger table beside the target (and the target, in
 * create and overwrite mode), and its copies insert.
 */
import { DatabaseError } from 'pg';
import { FerryError } from '../../common/errors.ts';
import type { ResolvedEndpointT } from '../../protocol/task.ts';
import {
  TEST_READ,
  TEST_WRITE,
  checkProbeName,
  withHint,
  writeRefused,
  type CheckHints,
} from '../connection-check.ts';
import type { ConnectorContext } from '../connector.ts';
import { connectPostgres, type PostgresSession } from './postgres-client.ts';
import { compilePostgresTarget, quoteIdentifier } from './postgres-config.ts';
import { postgresMessage } from './postgres-errors.ts';

/** insufficient_privilege, invalid_schema_name (no schema to create in), read_only_sql_transaction. */
const REFUSED = new Set(['42501', '3F000', '25006']);

interface Whereabouts {
  version: string;
  role: string;
  database: string;
  /** The schema an unqualified CREATE TABLE creates in; null when no schema of the search_path exists. */
  schema: string | null;
}

const WHEREABOUTS = `SELECT current_setting('server_version') AS version, current_user AS role,
  current_database() AS database, current_schema() AS schema`;

export async function checkPostgresRead(endpoint: ResolvedEndpointT, ctx: ConnectorContext): Promise<string> {
  const say = (text: string): string => postgresMessage(endpoint.linkedService, text);
  try {
    const target = compilePostgresTarget(endpoint);
    const session = await connectPostgres(target, ctx.signal);
    try {
      const at = await whereabouts(session, say, TEST_READ);
      // `15.19 (Debian 15.19-1.pgdg120+1)`: the number is what the operator compares.
      const version = at.version.split(' ')[0];
      return `connected to PostgreSQL ${version} as ${at.role}, database ${at.database}`;
    } finally {
      await session.close();
    }
  } catch (err) {
    throw withHint(err, hints(endpoint));
  }
}

export async function checkPostgresWrite(
  endpoint: ResolvedEndpointT,
  ctx: ConnectorContext,
  probeName: string,
): Promise<string> {
  const ls = endpoint.linkedService;
  const say = (text: string): string => postgresMessage(ls, text);
  try {
    checkProbeName(probeName, say);
    const table = quoteIdentifier(probeName);
    const target = compilePostgresTarget(endpoint);
    const session = await connectPostgres(target, ctx.signal);
    // Closing ends the transaction too, rolled back, whichever step failed.
    try {
      const at = await whereabouts(session, say, TEST_WRITE);
      let inserted: number;
      try {
        await session.query('BEGIN', [], TEST_WRITE);
        await session.query(`CREATE TABLE ${table} (id int)`, [], TEST_WRITE);
        inserted = await session.execute(`INSERT INTO ${table} (id) VALUES (1)`, [], TEST_WRITE);
      } catch (err) {
        throw refusal(err, at, say);
      }
      await session.query('ROLLBACK', [], TEST_WRITE);
      if (inserted !== 1) {
        throw new FerryError(
          'store_error',
          say(`inserting a row into table ${probeName} touched ${inserted} rows (${TEST_WRITE})`),
          { retryable: false },
        );
      }
      // A table was created, so the schema exists.
      return `created, wrote and rolled back table ${at.schema}.${probeName} in database ${at.database} as ${at.role}`;
    } finally {
      await session.close();
    }
  } catch (err) {
    throw withHint(err, hints(endpoint));
  }
}

async function whereabouts(
  session: PostgresSession,
  say: (text: string) => string,
  operation: string,
): Promise<Whereabouts> {
  const [at] = await session.query<Whereabouts>(WHEREABOUTS, [], operation);
  if (!at) throw new FerryError('store_error', say(`the server answered no row (${operation})`));
  return at;
}

/** A write the server refused, said as such with the grant or setting it takes; others as they are. */
function refusal(err: unknown, at: Whereabouts, say: (text: string) => string): unknown {
  const cause = err instanceof FerryError ? err.cause : undefined;
  const sqlstate = cause instanceof DatabaseError ? cause.code : undefined;
  if (!(err instanceof FerryError) || sqlstate === undefined || !REFUSED.has(sqlstate)) return err;
  const role = quoteIdentifier(at.role);
  const hint =
    sqlstate === '25006'
      ? 'the server takes no writes (a standby, or default_transaction_read_only on): point the linked service at the primary'
      : at.schema === null
        ? `no schema of the role's search_path exists: create one it may use, or ALTER ROLE ${role} SET search_path = <schema>`
        : `a sink creates tables (its ledger, and the target in create or overwrite mode) and inserts rows: GRANT USAGE, CREATE ON SCHEMA ${quoteIdentifier(at.schema)} TO ${role}, and INSERT on the tables it loads`;
  return writeRefused(err, say, hint);
}

function hints(endpoint: ResolvedEndpointT): CheckHints {
  const p = endpoint.properties;
  return {
    store_auth: `check the linked service's user and password, and that the server's pg_hba.conf lets ${String(p['user'])} connect to database ${String(p['database'])} from this node`,
    store_unreachable:
      "check the linked service's host and port, and that the server accepts connections from this node (listen_addresses, firewalls)",
    store_object_missing: `check the linked service's database: the server has no database ${String(p['database'])}`,
  };
}

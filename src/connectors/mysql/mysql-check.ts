/**
 * The MySQL and MariaDB store's connection test, with the linked service's database (options are
 * ignored). Read: connects and asks the server its version, the account and the database. Write:
 * creates a table named by the probe in the database, inserts a row, and drops the table, in a
 * session set up as a sink's is. DDL commits at once in MySQL, so no transaction can take the table
 * back: a test that fails after creating it (or may have: a connection cut mid-statement) drops it,
 * on a new connection when its own is gone.
 *
 * A sink needs as much: its prepare creates a ledger table beside the target (and the target, in
 * create mode; an overwrite also drops its staging tables), and its copies insert.
 */
import type { ResultSetHeader } from 'mysql2';
import { FerryError } from '../../common/errors.ts';
import type { ResolvedEndpointT } from '../../protocol/task.ts';
import {
  CLEANUP_MS,
  TEST_CLEANUP,
  TEST_READ,
  TEST_WRITE,
  checkProbeName,
  withHint,
  writeRefused,
  type CheckHints,
} from '../connection-check.ts';
import type { ConnectorContext } from '../connector.ts';
import { WRITING_SESSION, connectMysql, type MysqlSession } from './mysql-client.ts';
import { compileMysqlTarget, quoteIdentifier, type MysqlTarget } from './mysql-config.ts';
import { isServerError, mysqlMessage } from './mysql-errors.ts';

/** Errors of a write the server refused: no right to it, or a server or transaction that is read-only. */
const REFUSED = [
  'ER_TABLEACCESS_DENIED_ERROR',
  'ER_DBACCESS_DENIED_ERROR',
  'ER_SPECIFIC_ACCESS_DENIED_ERROR',
  'ER_COLUMNACCESS_DENIED_ERROR',
  'ER_OPTION_PREVENTS_STATEMENT', // --read-only
  'ER_CANT_EXECUTE_IN_READ_ONLY_TRANSACTION',
  'ER_READ_ONLY_MODE',
];
interface Whereabouts {
  version: string;
  account: string;
  database: string;
}

const WHEREABOUTS = 'SELECT VERSION() AS version, CURRENT_USER() AS account, DATABASE() AS `database`';

export async function checkMysqlRead(endpoint: ResolvedEndpointT, ctx: ConnectorContext): Promise<string> {
  const say = (text: string): string => mysqlMessage(endpoint.linkedService, text);
  try {
    const target = compileMysqlTarget(endpoint);
    const session = await connectMysql(target, ctx.signal);
    try {
      const at = await whereabouts(session, say, TEST_READ);
      return `connected to ${server(at.version)} as ${at.account}, database ${at.database}`;
    } finally {
      await session.close();
    }
  } catch (err) {
    throw withHint(err, hints(endpoint));
  }
}

export async function checkMysqlWrite(
  endpoint: ResolvedEndpointT,
  ctx: ConnectorContext,
  probeName: string,
): Promise<string> {
  const say = (text: string): string => mysqlMessage(endpoint.linkedService, text);
  try {
    checkProbeName(probeName, say);
    const target = compileMysqlTarget(endpoint);
    const table = `${quoteIdentifier(target.database)}.${quoteIdentifier(probeName)}`;
    const shown = `${target.database}.${probeName}`;
    const session = await connectMysql(target, ctx.signal, WRITING_SESSION);
    // 'maybe': the CREATE was sent, and no answer from the server says it failed.
    let probe: 'none' | 'maybe' | 'made' = 'none';
    try {
      const at = await whereabouts(session, say, TEST_WRITE);
      let inserted: number;
      try {
        probe = 'maybe';
        try {
          // A primary key, for servers that require one (sql_require_primary_key).
          await session.run(`CREATE TABLE ${table} (id int PRIMARY KEY)`, TEST_WRITE);
        } catch (err) {
          if (!session.dead) probe = 'none';
          throw err;
        }
        probe = 'made';
        const result = await session.run<ResultSetHeader>(`INSERT INTO ${table} (id) VALUES (1)`, TEST_WRITE);
        inserted = result.affectedRows;
      } catch (err) {
        throw refusal(err, at, say);
      }
      try {
        await session.run(`DROP TABLE ${table}`, TEST_CLEANUP);
      } catch (err) {
        if (!(err instanceof FerryError) || !REFUSED.some((code) => isServerError(err, code))) throw err;
        throw new FerryError(err.code, err.message, {
          cause: err.cause,
          retryable: false,
          hint: `drop table ${shown} by hand; a sink in overwrite mode drops its staging tables, so the account needs DROP too: GRANT DROP ON ${quoteIdentifier(at.database)}.* TO ${grantee(at.account)}`,
        });
      }
      probe = 'none';
      if (inserted !== 1) {
        throw new FerryError(
          'store_error',
          say(`inserting a row into table ${shown} touched ${inserted} rows (${TEST_WRITE})`),
          { retryable: false },
        );
      }
      return `created, wrote and dropped table ${probeName} in database ${at.database} as ${at.account}`;
    } finally {
      if (probe !== 'none') await dropProbe(session, target, table);
      await session.close();
    }
  } catch (err) {
    throw withHint(err, hints(endpoint));
  }
}

async function whereabouts(
  session: MysqlSession,
  say: (text: string) => string,
  operation: string,
): Promise<Whereabouts> {
  const [at] = await session.query<Whereabouts>(WHEREABOUTS, [], operation);
  if (!at) throw new FerryError('store_error', say(`the server answered no row (${operation})`));
  return at;
}

/** `10.11.19-MariaDB-0+deb12u1` -> `MariaDB 10.11.19`; `8.4.2` -> `MySQL 8.4.2`. */
function server(version: string): string {
  const number = /^\d+(\.\d+)*/.exec(version)?.[0] ?? version;
  return `${/mariadb/i.test(version) ? 'MariaDB' : 'MySQL'} ${number}`;
}

/**
 * Best effort, after a failure that is reported instead: drops the probe table on the test's own
 * connection, or on a new one when that is gone (cut by the signal, or lost).
 */
async function dropProbe(session: MysqlSession, target: MysqlTarget, table: string): Promise<void> {
  const sql = `DROP TABLE IF EXISTS ${table}`;
  if (!session.dead) {
    await session.run(sql, TEST_CLEANUP).catch(() => {});
    return;
  }
  try {
    const fresh = await connectMysql(target, AbortSignal.timeout(CLEANUP_MS));
    try {
      await fresh.run(sql, TEST_CLEANUP);
    } finally {
      await fresh.close();
    }
  } catch {
    // Nothing more to be done: the test's own failure is what is reported.
  }
}

/** A write the server refused, said as such with the grant or setting it takes; others as they are. */
function refusal(err: unknown, at: Whereabouts, say: (text: string) => string): unknown {
  if (!(err instanceof FerryError) || !REFUSED.some((code) => isServerError(err, code))) return err;
  const readOnly = [
    'ER_OPTION_PREVENTS_STATEMENT',
    'ER_CANT_EXECUTE_IN_READ_ONLY_TRANSACTION',
    'ER_READ_ONLY_MODE',
  ];
  const hint = readOnly.some((code) => isServerError(err, code))
    ? 'the server takes no writes (read_only, or a replica): point the linked service at the primary'
    : `a sink creates tables (its ledger, and the target in create mode) and inserts rows: GRANT CREATE, INSERT, SELECT, UPDATE, DELETE, DROP ON ${quoteIdentifier(at.database)}.* TO ${grantee(at.account)}`;
  return writeRefused(err, say, hint);
}

/** `ferry@%` (CURRENT_USER()) -> `'ferry'@'%'`, as GRANT takes it. */
function grantee(account: string): string {
  const at = account.lastIndexOf('@');
  return at < 0 ? `'${account}'` : `'${account.slice(0, at)}'@'${account.slice(at + 1)}'`;
}

function hints(endpoint: ResolvedEndpointT): CheckHints {
  const p = endpoint.properties;
  return {
    store_auth: `check the linked service's user and password, and that the server lets ${String(p['user'])} connect from this node and use database ${String(p['database'])}`,
    store_unreachable:
      "check the linked service's host and port, and that the server accepts connections from this node (bind-address, firewalls)",
    store_object_missing: `check the linked service's database: the server has no database ${String(p['database'])}`,
  };
}

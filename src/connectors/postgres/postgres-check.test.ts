/**
 * What only the PostgreSQL connection test does: the write check's refusals, each with the grant
 * or setting that ends it (a role that may only read, a search_path without a schema, a read-only
 * session), and its probe table created where the role's tables go and never left behind. Throwaway
 * roles of this file's own, dropped at the end. The rules every store keeps are in the conformance
 * suite (connection-checks.ts).
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import type { Client } from 'pg';
import type { ConnectorContext } from '../connector.ts';
import { postgresSink, postgresSource } from './postgres-connector.ts';
import { SERVER, createTestSchema, endpoint, rejectsWith, type TestSchema } from './postgres-test-kit.ts';

let db: TestSchema;
let admin: Client;
let schema: string;
/** Reads the schema's tables, and may create nothing. */
let reader: string;
/** Its search_path names a schema that does not exist. */
let lost: string;
/** May create in the schema, but its sessions are read-only. */
let readOnly: string;
let probes = 0;

before(async () => {
  db = await createTestSchema('pgcheck');
  ({ admin, schema } = db);
  reader = `ferry_reader_${db.suffix}`;
  lost = `ferry_lost_${db.suffix}`;
  readOnly = `ferry_rosession_${db.suffix}`;
  await admin.query(`
    CREATE TABLE ${schema}.orders (id int);
    CREATE ROLE ${reader} LOGIN; GRANT USAGE ON SCHEMA ${schema} TO ${reader};
    GRANT SELECT ON ${schema}.orders TO ${reader};
    ALTER ROLE ${reader} SET search_path = ${schema};
    CREATE ROLE ${lost} LOGIN; ALTER ROLE ${lost} SET search_path = no_such_schema_${db.suffix};
    CREATE ROLE ${readOnly} LOGIN; GRANT USAGE, CREATE ON SCHEMA ${schema} TO ${readOnly};
    ALTER ROLE ${readOnly} SET search_path = ${schema};
    ALTER ROLE ${readOnly} SET default_transaction_read_only = on;`);
});

after(async () => {
  await db.drop([reader, lost, readOnly]);
});

function linkedService(user: string) {
  return endpoint({}, { user }, 'pg1');
}

function ctx(): ConnectorContext {
  return { signal: new AbortController().signal, allowedRoots: [] };
}

function probeName(): string {
  return `ferry_connection_test_${db.suffix}_${++probes}`;
}

/** Where tables named `name` are, in any schema. */
async function tablesNamed(name: string): Promise<string[]> {
  const { rows } = await admin.query<{ name: string }>(
    `SELECT s.nspname || '.' || c.relname AS name FROM pg_class c
       JOIN pg_namespace s ON s.oid = c.relnamespace WHERE c.relname = $1`,
    [name],
  );
  return rows.map((r) => r.name);
}

describe('postgres connection test', () => {
  it('says what it connected to, and where it created and rolled back its probe table', async () => {
    const version = (await admin.query<{ v: string }>(`SELECT current_setting('server_version') AS v`))
      .rows[0]?.v;
    assert.equal(
      await postgresSource.checkRead(endpoint({}, {}, 'pg1'), ctx()),
      `connected to PostgreSQL ${version?.split(' ')[0]} as ${SERVER.user}, database test`,
    );
    const probe = probeName();
    assert.equal(
      await postgresSink.checkWrite(linkedService(SERVER.user), ctx(), probe),
      `created, wrote and rolled back table public.${probe} in database test as postgres`,
    );
    assert.deepEqual(await tablesNamed(probe), []);
  });

  it('lets a role that may only read pass the read check and refuses its write, naming the grant', async () => {
    assert.match(await postgresSource.checkRead(linkedService(reader), ctx()), new RegExp(` as ${reader}, `));
    const probe = probeName();
    const err = await rejectsWith(
      postgresSink.checkWrite(linkedService(reader), ctx(), probe),
      'store_error',
      new RegExp(
        `^postgres "pg1": writing is refused: permission denied for schema ${schema} \\(test write\\)$`,
      ),
    );
    assert.equal(err.retryable, false);
    assert.equal(
      err.hint,
      `a sink creates tables (its ledger, and the target in create or overwrite mode) and inserts rows: GRANT USAGE, CREATE ON SCHEMA "${schema}" TO "${reader}", and INSERT on the tables it loads`,
    );
    assert.deepEqual(await tablesNamed(probe), []);

    // The grant the hint names is enough.
    await admin.query(`GRANT CREATE ON SCHEMA ${schema} TO ${reader}`);
    try {
      assert.equal(
        await postgresSink.checkWrite(linkedService(reader), ctx(), probe),
        `created, wrote and rolled back table ${schema}.${probe} in database test as ${reader}`,
      );
    } finally {
      await admin.query(`REVOKE CREATE ON SCHEMA ${schema} FROM ${reader}`);
    }
    assert.deepEqual(await tablesNamed(probe), []);
  });

  it('refuses a write with no schema to create in, pointing at the search_path', async () => {
    const err = await rejectsWith(
      postgresSink.checkWrite(linkedService(lost), ctx(), probeName()),
      'store_error',
      /^postgres "pg1": writing is refused: no schema has been selected to create in \(test write\)$/,
    );
    assert.equal(
      err.hint,
      `no schema of the role's search_path exists: create one it may use, or ALTER ROLE "${lost}" SET search_path = <schema>`,
    );
  });

  it('refuses a write in a read-only session, pointing at the primary', async () => {
    const probe = probeName();
    const err = await rejectsWith(
      postgresSink.checkWrite(linkedService(readOnly), ctx(), probe),
      'store_error',
      /^postgres "pg1": writing is refused: cannot execute CREATE TABLE in a read-only transaction \(test write\)$/,
    );
    assert.match(err.hint ?? '', /^the server takes no writes/);
    assert.deepEqual(await tablesNamed(probe), []);
  });
});

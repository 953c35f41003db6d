/**
 * What only the MySQL connection test does: DDL commits at once, so the write check creates, writes
 * and drops its probe table, and drops it too when a later step fails; a refused write names the
 * grant that ends it; a drop it may not make says the table is left and how to remove it. A
 * database and throwaway users of this file's own, dropped at the end. The rules every store keeps
 * are in the conformance suite (connection-checks.ts).
 */
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { after, before, describe, it } from 'node:test';
import mysql from 'mysql2/promise';
import type { ResolvedEndpointT } from '../../protocol/task.ts';
import type { ConnectorContext } from '../connector.ts';
import { mysqlSink, mysqlSource } from './mysql-connector.ts';
import { rejectsWith } from '../../../test/helpers/rejects-with.ts';

// MariaDB at 127.0.0.1:3306, user root without a password.
const SERVER = { host: '127.0.0.1', port: 3306, user: 'root' };
const suffix = `${process.pid}_${randomBytes(3).toString('hex')}`;
const db = `ferry_c_${suffix}`;
const password = `pw-${suffix}`;
/** SELECT only. */
const reader = `ferry_cr_${suffix}`;
/** CREATE and DROP, but no INSERT: the probe table is made, then the write is refused. */
const noInsert = `ferry_ci_${suffix}`;
/** CREATE and INSERT, but no DROP: the probe table cannot be removed. */
const noDrop = `ferry_cd_${suffix}`;
const USERS = [reader, noInsert, noDrop];
let admin: mysql.Connection;
let probes = 0;

before(async () => {
  admin = await mysql.createConnection({ ...SERVER, database: 'test' });
  await admin.query(`CREATE DATABASE ${db}`);
  for (const user of USERS) await admin.query(`CREATE USER '${user}'@'%' IDENTIFIED BY '${password}'`);
  await admin.query(`GRANT SELECT ON ${db}.* TO '${reader}'@'%'`);
  await admin.query(`GRANT SELECT, CREATE, DROP ON ${db}.* TO '${noInsert}'@'%'`);
  await admin.query(`GRANT SELECT, CREATE, INSERT ON ${db}.* TO '${noDrop}'@'%'`);
});

after(async () => {
  for (const user of USERS) await admin.query(`DROP USER IF EXISTS '${user}'@'%'`);
  await admin.query(`DROP DATABASE IF EXISTS ${db}`);
  await admin.end();
});

function linkedService(user?: string): ResolvedEndpointT {
  return {
    type: 'mysql',
    linkedService: 'my1',
    properties: { ...SERVER, database: db, ...(user === undefined ? {} : { user, password }) },
    options: {},
  };
}

function ctx(): ConnectorContext {
  return { signal: new AbortController().signal, allowedRoots: [] };
}

function probeName(): string {
  return `ferry_connection_test_${++probes}`;
}

async function tableExists(name: string): Promise<boolean> {
  const [rows] = await admin.query<mysql.RowDataPacket[]>(
    'SELECT 1 FROM information_schema.tables WHERE table_schema = ? AND table_name = ?',
    [db, name],
  );
  return rows.length > 0;
}

describe('mysql connection test', () => {
  it('says what it connected to, and that it created, wrote and dropped its probe table', async () => {
    const [[server]] = await admin.query<mysql.RowDataPacket[]>('SELECT VERSION() AS v, CURRENT_USER() AS u');
    const version = /^[\d.]+/.exec(String(server?.['v']))?.[0];
    const account = String(server?.['u']);
    assert.equal(
      await mysqlSource.checkRead(linkedService(), ctx()),
      `connected to MariaDB ${version} as ${account}, database ${db}`,
    );
    const probe = probeName();
    assert.equal(
      await mysqlSink.checkWrite(linkedService(), ctx(), probe),
      `created, wrote and dropped table ${probe} in database ${db} as ${account}`,
    );
    assert.equal(await tableExists(probe), false);
  });

  it('lets a user that may only read pass the read check and refuses its write, naming the grant', async () => {
    assert.match(await mysqlSource.checkRead(linkedService(reader), ctx()), new RegExp(` as ${reader}@%, `));
    const probe = probeName();
    const err = await rejectsWith(
      mysqlSink.checkWrite(linkedService(reader), ctx(), probe),
      'store_error',
      new RegExp(
        `^mysql "my1": writing is refused: CREATE command denied to user '${reader}'@'[^']+' for table .*${probe}.* \\(test write\\)$`,
      ),
    );
    assert.equal(err.retryable, false);
    assert.equal(
      err.hint,
      `a sink creates tables (its ledger, and the target in create mode) and inserts rows: GRANT CREATE, INSERT, SELECT, UPDATE, DELETE, DROP ON \`${db}\`.* TO '${reader}'@'%'`,
    );
    assert.equal(await tableExists(probe), false);
  });

  it('drops the probe table it made when the insert is refused', async () => {
    const probe = probeName();
    await rejectsWith(
      mysqlSink.checkWrite(linkedService(noInsert), ctx(), probe),
      'store_error',
      /^mysql "my1": writing is refused: INSERT command denied to user .* \(test write\)$/,
    );
    assert.equal(await tableExists(probe), false);
  });

  it('says the probe table is left, and how to remove it, when it may not drop it', async () => {
    const probe = probeName();
    try {
      const err = await rejectsWith(
        mysqlSink.checkWrite(linkedService(noDrop), ctx(), probe),
        'store_error',
        /^mysql "my1": DROP command denied to user .* \(test write, removing the probe\)$/,
      );
      assert.equal(err.retryable, false);
      assert.match(err.hint ?? '', new RegExp(`^drop table ${db}\\.${probe} by hand; .* GRANT DROP ON`));
      assert.equal(await tableExists(probe), true, 'the table the hint names is there');
    } finally {
      await admin.query(`DROP TABLE IF EXISTS ${db}.${probe}`);
    }
  });
});

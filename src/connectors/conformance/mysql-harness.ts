/**
 * MySQL (the test server is MariaDB at 127.0.0.1:3306, user root without a password) for the
 * conformance suite: a database of this file's own with a random suffix, in utf8mb4, and per place
 * a source table `src_<n>` and a sink table `dst_<n>` (created by the sink's prepare, mode create).
 * What the sink holds is read back over a connection of the harness's own, as text (big numbers as
 * strings), and rendered as canonical CSV records.
 */
import { randomBytes } from 'node:crypto';
import mysql from 'mysql2/promise';
import type { ResolvedEndpointT } from '../../protocol/task.ts';
import { mysqlSink, mysqlSource } from '../mysql/mysql-connector.ts';
import type { ColumnType, TableColumn } from '../../tables/table-columns.ts';
import { closedPort } from './closed-port.ts';
import { COLUMNS, csvFields, csvRecord } from './conformance-data.ts';
import type { ConformanceHarness, ConformancePlace, Dataset } from './conformance-harness.ts';

const SERVER = { host: '127.0.0.1', port: 3306, user: 'root' };
const WRONG_PASSWORD = 'ferry-conformance-wrong-password';
/** Rows per INSERT when seeding. */
const BATCH = 2000;

/** The MySQL types the harness creates a source table with; the suite's columns use few. */
const NATIVE: Partial<Record<ColumnType, string>> = { int64: 'bigint', int32: 'int', text: 'text' };

export function mysqlHarness(): ConformanceHarness {
  const database = `ferry_conformance_${randomBytes(4).toString('hex')}`;
  const properties = { ...SERVER, database };
  let admin: mysql.Connection | undefined;
  let places = 0;

  const connection = (): mysql.Connection => {
    if (!admin) throw new Error('the harness is not started');
    return admin;
  };
  const endpoint = (
    linkedService: string,
    options: Record<string, unknown>,
    props: Record<string, unknown> = properties,
  ): ResolvedEndpointT => ({ type: 'mysql', linkedService, properties: props, options });
  /** The same broken properties as a source and as a sink. */
  const both = (props: Record<string, unknown>) => ({
    source: endpoint('my1', { table: 'anything' }, props),
    sink: endpoint('my2', { table: 'anything', mode: 'create' }, props),
  });

  return {
    type: 'mysql',
    kind: 'table',
    source: mysqlSource,
    sink: mysqlSink,
    splitOptions: { partitionColumn: 'id', partitions: 3 },
    limits: {},
    broken: [
      {
        failure: 'bad_configuration',
        what: 'no database',
        endpoints: async () => ({ ...both(SERVER), mentions: ['database'], secrets: [] }),
      },
      {
        failure: 'unreachable',
        what: 'nothing listening at the port',
        endpoints: async () => {
          const port = await closedPort();
          return { ...both({ ...properties, port }), mentions: [`127.0.0.1:${port}`], secrets: [] };
        },
      },
      {
        failure: 'wrong_credentials',
        what: 'a wrong password',
        endpoints: async () => ({
          ...both({ ...properties, password: WRONG_PASSWORD }),
          mentions: [],
          secrets: [WRONG_PASSWORD],
        }),
      },
      {
        failure: 'missing_object',
        what: 'a table that does not exist',
        inOptions: true,
        endpoints: async () => ({
          source: endpoint('my1', { table: 'no_such_table' }),
          // append: the table must exist (create would make it).
          sink: endpoint('my2', { table: 'no_such_table', mode: 'append' }),
          mentions: ['no_such_table'],
          secrets: [],
        }),
      },
    ],

    async start() {
      admin = await mysql.createConnection({
        ...SERVER,
        database: 'test',
        charset: 'utf8mb4',
        supportBigNumbers: true,
        bigNumberStrings: true,
      });
      await admin.query(`CREATE DATABASE ${database} CHARACTER SET utf8mb4 COLLATE utf8mb4_bin`);
      await admin.query(`USE ${database}`);
    },

    async stop() {
      if (!admin) return;
      // A failed check may leave a session holding a lock, which would make DROP DATABASE wait.
      const [sessions] = await admin.query<mysql.RowDataPacket[]>(
        'SELECT id FROM information_schema.processlist WHERE db = ? AND id <> CONNECTION_ID()',
        [database],
      );
      for (const s of sessions) await admin.query(`KILL ${Number(s['id'])}`).catch(() => {});
      await admin.query(`DROP DATABASE IF EXISTS ${database}`);
      await admin.end();
    },

    allowedRoots: () => [],

    addressedTo: (port) => both({ ...properties, port }),

    async place(): Promise<ConformancePlace> {
      const n = ++places;
      const src = `src_${n}`;
      const dst = `dst_${n}`;
      return {
        source: endpoint('my1', { table: src }),
        sink: endpoint('my2', { table: dst, mode: 'create' }),
        sourceName: src,
        secrets: [],
        async seed(data: Dataset) {
          if (data.kind !== 'table') throw new Error('mysql stores tables');
          const c = connection();
          await c.query(`CREATE TABLE ${src} (${data.columns.map(columnSql).join(', ')})`);
          for (let i = 0; i < data.rows.length; i += BATCH) {
            const values = data.rows.slice(i, i + BATCH).map(csvFields);
            await c.query(`INSERT INTO ${src} (${data.columns.map((col) => col.name).join(', ')}) VALUES ?`, [
              values,
            ]);
          }
        },
        async unseed() {
          await connection().query(`DROP TABLE ${src}`);
        },
        async visible() {
          const c = connection();
          const [found] = await c.query<mysql.RowDataPacket[]>(
            'SELECT 1 FROM information_schema.tables WHERE table_schema = ? AND table_name = ?',
            [database, dst],
          );
          if (found.length === 0) return { kind: 'table', columns: COLUMNS, rows: [] };
          const names = COLUMNS.map((col) => col.name);
          const [rows] = await c.query<mysql.RowDataPacket[]>({
            sql: `SELECT ${names.join(', ')} FROM ${dst}`,
            rowsAsArray: true,
          });
          return {
            kind: 'table',
            columns: COLUMNS,
            rows: rows.map((row) => csvRecord((row as unknown[]).map(text))),
          };
        },
        async probeLeftovers(probeName: string) {
          const [tables] = await connection().query<mysql.RowDataPacket[]>(
            `SELECT CONCAT(table_schema, '.', table_name) AS name FROM information_schema.tables
              WHERE table_name = ?`,
            [probeName],
          );
          return tables.map((t) => String(t['name']));
        },
        async leftovers() {
          // An overwrite's staging tables are named after the target; append and create make none.
          const [tables] = await connection().query<mysql.RowDataPacket[]>(
            `SELECT table_name AS name FROM information_schema.tables
              WHERE table_schema = ? AND table_name LIKE ? ORDER BY table_name`,
            [database, `dst\\_${n}\\_\\_%`],
          );
          return tables.map((t) => String(t['name']));
        },
      };
    },
  };
}

function columnSql(column: TableColumn): string {
  const type = NATIVE[column.type];
  if (type === undefined) throw new Error(`the harness makes no ${column.type} column`);
  return `${column.name} ${type}${column.nullable ? '' : ' NOT NULL'}`;
}

/** A value as mysql2 returns it with big numbers as strings: its text, or null. */
function text(value: unknown): string | null {
  if (value === null) return null;
  if (typeof value === 'string') return value;
  if (typeof value === 'number' || typeof value === 'bigint') return String(value);
  if (Buffer.isBuffer(value)) return value.toString('utf8');
  throw new Error(`unexpected value ${typeof value}`);
}

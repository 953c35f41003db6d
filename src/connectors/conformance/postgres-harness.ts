/**
 * PostgreSQL for the conformance suite: the test server (127.0.0.1:5432, user postgres, trust
 * authentication, database `test`), a schema of this file's own with a random suffix, and per place
 * a source table `src_<n>` and a sink table `dst_<n>` (created by the sink's prepare, mode create).
 * What the sink holds is read back with the server's own COPY ... TO STDOUT (FORMAT csv), which is
 * canonical CSV, over a connection of the harness's own.
 */
import { randomBytes } from 'node:crypto';
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { Client } from 'pg';
import { from as copyFrom, to as copyTo } from 'pg-copy-streams';
import type { ResolvedEndpointT } from '../../protocol/task.ts';
import { postgresSink, postgresSource } from '../postgres/postgres-connector.ts';
import type { ColumnType, TableColumn } from '../../tables/table-columns.ts';
import { closedPort } from './closed-port.ts';
import { COLUMNS, csvRecords, csvText } from './conformance-data.ts';
import type { ConformanceHarness, ConformancePlace, Dataset } from './conformance-harness.ts';

const SERVER = { host: '127.0.0.1', port: 5432, database: 'test', user: 'postgres' };

/** The PostgreSQL types the harness creates a source table with; the suite's columns use few. */
const NATIVE: Partial<Record<ColumnType, string>> = { int64: 'bigint', int32: 'integer', text: 'text' };

export function postgresHarness(): ConformanceHarness {
  const schema = `ferry_conformance_${randomBytes(4).toString('hex')}`;
  let admin: Client | undefined;
  let places = 0;

  const sql = async (text: string): Promise<void> => {
    if (!admin) throw new Error('the harness is not started');
    await admin.query(text);
  };
  const endpoint = (
    linkedService: string,
    options: Record<string, unknown>,
    properties: Record<string, unknown> = SERVER,
  ): ResolvedEndpointT => ({ type: 'postgres', linkedService, properties, options });
  /** The same broken properties as a source and as a sink. */
  const both = (properties: Record<string, unknown>, table = `${schema}.anything`) => ({
    source: endpoint('pg1', { table }, properties),
    sink: endpoint('pg2', { table, mode: 'create' }, properties),
  });

  return {
    type: 'postgres',
    kind: 'table',
    source: postgresSource,
    sink: postgresSink,
    splitOptions: { partitionColumn: 'id', partitions: 3 },
    limits: {},
    broken: [
      {
        failure: 'bad_configuration',
        what: 'no database',
        endpoints: async () => {
          const { database: _database, ...properties } = SERVER;
          return { ...both(properties), mentions: ['database'], secrets: [] };
        },
      },
      {
        failure: 'unreachable',
        what: 'nothing listening at the port',
        endpoints: async () => {
          const port = await closedPort();
          return { ...both({ ...SERVER, port }), mentions: [`127.0.0.1:${port}`], secrets: [] };
        },
      },
      {
        failure: 'wrong_credentials',
        what: 'a role that does not exist',
        endpoints: async () => ({
          ...both({ ...SERVER, user: 'ferry_no_such_role', password: 'ferry-wrong-password' }),
          mentions: ['ferry_no_such_role'],
          secrets: ['ferry-wrong-password'],
        }),
      },
      {
        failure: 'wrong_credentials',
        what: 'a wrong password',
        skip: 'the test server trusts local connections (trust authentication), so it accepts any password',
      },
      {
        failure: 'missing_object',
        what: 'a table that does not exist',
        inOptions: true,
        endpoints: async () => ({
          source: endpoint('pg1', { table: `${schema}.no_such_table` }),
          // append: the table must exist (create would make it).
          sink: endpoint('pg2', { table: `${schema}.no_such_table`, mode: 'append' }),
          mentions: ['no_such_table'],
          secrets: [],
        }),
      },
    ],

    async start() {
      admin = new Client(SERVER);
      await admin.connect();
      await sql(`CREATE SCHEMA ${schema}`);
    },

    async stop() {
      if (!admin) return;
      // A failed check may leave a COPY open, whose lock would make DROP SCHEMA wait forever.
      await admin.query(
        `SELECT pg_terminate_backend(pid) FROM pg_stat_activity
          WHERE pid <> pg_backend_pid() AND position($1 in query) > 0`,
        [schema],
      );
      await sql(`SET lock_timeout = '10s'`);
      await sql(`DROP SCHEMA IF EXISTS ${schema} CASCADE`);
      await admin.end();
    },

    allowedRoots: () => [],

    addressedTo: (port) => both({ ...SERVER, port }),

    async place(): Promise<ConformancePlace> {
      const n = ++places;
      const src = `${schema}.src_${n}`;
      const dst = `${schema}.dst_${n}`;
      return {
        source: endpoint('pg1', { table: src }),
        sink: endpoint('pg2', { table: dst, mode: 'create' }),
        sourceName: `src_${n}`,
        secrets: [],
        async seed(data: Dataset) {
          if (data.kind !== 'table') throw new Error('postgres stores tables');
          await sql(`CREATE TABLE ${src} (${data.columns.map(columnSql).join(', ')})`);
          if (!admin) return;
          const copy = admin.query(copyFrom(`COPY ${src} FROM STDIN WITH (FORMAT csv, HEADER true)`));
          await pipeline(Readable.from([csvText(data.columns, data.rows)]), copy);
        },
        async unseed() {
          await sql(`DROP TABLE ${src}`);
        },
        async visible() {
          if (!admin) throw new Error('the harness is not started');
          const found = await admin.query<{ found: boolean }>('SELECT to_regclass($1) IS NOT NULL AS found', [
            dst,
          ]);
          if (found.rows[0]?.found !== true) return { kind: 'table', columns: COLUMNS, rows: [] };
          const names = COLUMNS.map((c) => c.name).join(', ');
          const chunks: Buffer[] = [];
          const copy = admin.query(copyTo(`COPY (SELECT ${names} FROM ${dst}) TO STDOUT WITH (FORMAT csv)`));
          for await (const chunk of copy) chunks.push(Buffer.from(chunk as Buffer));
          const rows = csvRecords(Buffer.concat(chunks).toString('utf8'));
          return { kind: 'table', columns: COLUMNS, rows };
        },
        async probeLeftovers(probeName: string) {
          if (!admin) throw new Error('the harness is not started');
          const tables = await admin.query<{ name: string }>(
            `SELECT s.nspname || '.' || c.relname AS name FROM pg_class c
               JOIN pg_namespace s ON s.oid = c.relnamespace WHERE c.relname = $1`,
            [probeName],
          );
          return tables.rows.map((r) => r.name);
        },
        async leftovers() {
          // An overwrite's staging tables are named after the target; append and create make none.
          if (!admin) throw new Error('the harness is not started');
          const tables = await admin.query<{ name: string }>(
            `SELECT relname AS name FROM pg_class c JOIN pg_namespace s ON s.oid = c.relnamespace
              WHERE s.nspname = $1 AND relname LIKE $2 AND relkind = 'r' ORDER BY relname`,
            [schema, `dst\\_${n}\\_\\_%`],
          );
          return tables.rows.map((r) => r.name);
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

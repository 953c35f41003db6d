import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { Client, type Client as ClientT } from 'pg';
import type { TableColumn } from '../../tables/table-columns.ts';
import { postgresSource } from './postgres-connector.ts';
import { numericModifier } from './postgres-types.ts';
import {
  SERVER,
  attempt,
  createTestSchema,
  endpoint,
  only,
  planCtx,
  text,
  type TestSchema,
} from './postgres-test-kit.ts';

// A role whose own defaults make PostgreSQL's text output anything but canonical: Ferry's sessions
// must override every one of them.
let db: TestSchema;
let admin: ClientT;
let schema: string;
let odd: string;

before(async () => {
  db = await createTestSchema('pgcol');
  ({ admin, schema } = db);
  odd = `ferry_odd_${db.suffix}`;
  await admin.query(`
    CREATE ROLE ${odd} LOGIN;
    ALTER ROLE ${odd} SET TimeZone = 'America/New_York';
    ALTER ROLE ${odd} SET DateStyle = 'SQL, DMY';
    ALTER ROLE ${odd} SET IntervalStyle = 'sql_standard';
    ALTER ROLE ${odd} SET bytea_output = 'escape';
    ALTER ROLE ${odd} SET extra_float_digits = 0;
    GRANT USAGE ON SCHEMA ${schema} TO ${odd};
    ALTER DEFAULT PRIVILEGES IN SCHEMA ${schema} GRANT SELECT ON TABLES TO ${odd};
    CREATE TYPE ${schema}.mood AS ENUM ('sad', 'happy');
    CREATE DOMAIN ${schema}.tenths AS numeric(5,1) NOT NULL;
    CREATE TABLE ${schema}.typed (
      k int PRIMARY KEY, b bool, i2 int2, i4 int4 NOT NULL, i8 int8, f4 float4, f8 float8,
      n numeric(12,2), nu numeric, nneg numeric(2,-3), t text, vc varchar(40), c char(3), nm name,
      by bytea, d date, tm time, ts timestamp(3), tz timestamptz, j json, jb jsonb, u uuid,
      iv interval, arr int[], e ${schema}.mood, ip inet, dom ${schema}.tenths);
    INSERT INTO ${schema}.typed VALUES
      (1, true, -32768, 2147483647, -9223372036854775808, 3.4028235e38, 0.1::float8 + 0.2::float8,
       -1234567890.12, 12345678901234567890.123456789, 12345, E'naïve "quoted", line\\nbreak 🚀', '', 'ab', 'nm',
       '\\xDEADBEEF', '2024-02-29', '13:45:00.5', '2024-02-29 13:45:00.123', '2024-02-29 13:45:00+05',
       '{"a":[1,2]}', '{"a":[1,2]}', 'A0EEBC99-9C0B-4EF8-BB6D-6BB9BD380A11', '1 day 02:03:04',
       '{1,NULL,3}', 'happy', '10.0.0.1/8', 12.3),
      (2, NULL, NULL, 0, NULL, 'NaN', '-Infinity', NULL, 'NaN', NULL, NULL, NULL, NULL, NULL,
       NULL, '0044-03-15 BC', NULL, 'infinity', '0044-03-15 12:00:00+00 BC', NULL, NULL, NULL,
       NULL, NULL, NULL, NULL, 0);
  `);
});

after(async () => {
  await db.drop([odd]);
});

const expectedColumns = (): TableColumn[] => [
  { name: 'k', type: 'int32', nullable: false, nativeType: 'integer' },
  { name: 'b', type: 'boolean', nullable: true, nativeType: 'boolean' },
  { name: 'i2', type: 'int16', nullable: true, nativeType: 'smallint' },
  { name: 'i4', type: 'int32', nullable: false, nativeType: 'integer' },
  { name: 'i8', type: 'int64', nullable: true, nativeType: 'bigint' },
  { name: 'f4', type: 'float32', nullable: true, nativeType: 'real' },
  { name: 'f8', type: 'float64', nullable: true, nativeType: 'double precision' },
  { name: 'n', type: 'decimal', precision: 12, scale: 2, nullable: true, nativeType: 'numeric(12,2)' },
  { name: 'nu', type: 'decimal', nullable: true, nativeType: 'numeric' },
  { name: 'nneg', type: 'decimal', nullable: true, nativeType: 'numeric(2,-3)' },
  { name: 't', type: 'text', nullable: true, nativeType: 'text' },
  { name: 'vc', type: 'text', nullable: true, nativeType: 'character varying(40)' },
  { name: 'c', type: 'text', nullable: true, nativeType: 'character(3)' },
  { name: 'nm', type: 'text', nullable: true, nativeType: 'name' },
  { name: 'by', type: 'binary', nullable: true, nativeType: 'bytea' },
  { name: 'd', type: 'date', nullable: true, nativeType: 'date' },
  { name: 'tm', type: 'time', nullable: true, nativeType: 'time without time zone' },
  { name: 'ts', type: 'timestamp', nullable: true, nativeType: 'timestamp(3) without time zone' },
  { name: 'tz', type: 'timestamptz', nullable: true, nativeType: 'timestamp with time zone' },
  { name: 'j', type: 'json', nullable: true, nativeType: 'json' },
  { name: 'jb', type: 'json', nullable: true, nativeType: 'jsonb' },
  { name: 'u', type: 'uuid', nullable: true, nativeType: 'uuid' },
  { name: 'iv', type: 'text', nullable: true, nativeType: 'interval' },
  { name: 'arr', type: 'text', nullable: true, nativeType: 'integer[]' },
  { name: 'e', type: 'text', nullable: true, nativeType: `${schema}.mood` },
  { name: 'ip', type: 'text', nullable: true, nativeType: 'inet' },
  { name: 'dom', type: 'decimal', precision: 5, scale: 1, nullable: false, nativeType: `${schema}.tenths` },
];

describe('postgres columns and canonical CSV', () => {
  it('describes every column with its logical type, precision, nullability and native type', async () => {
    const columns = await postgresSource.describe!(endpoint({ table: `${schema}.typed` }), planCtx());
    assert.deepEqual(columns, expectedColumns());
    const some = await postgresSource.describe!(
      endpoint({ table: `${schema}.typed`, columns: ['tz', 'k', 'n'] }),
      planCtx(),
    );
    assert.deepEqual(
      some?.map((c) => c.name),
      ['tz', 'k', 'n'],
    );
  });

  it('renders canonical CSV whatever the role defaults say, timestamptz in UTC', async () => {
    // The role's own session really is odd: the settings below are what Ferry overrides.
    const plain = new Client({ ...SERVER, user: odd });
    await plain.connect();
    try {
      const { rows } = await plain.query(
        `SELECT d::text, tz::text, f8::text, by::text FROM ${schema}.typed WHERE k = 1`,
      );
      assert.deepEqual(rows[0], {
        d: '29/02/2024',
        tz: '29/02/2024 03:45:00 EST',
        f8: '0.3',
        by: '\\336\\255\\276\\357',
      });
    } finally {
      await plain.end();
    }

    const source = endpoint({ table: `${schema}.typed` }, { user: odd });
    const object = await only(postgresSource.read(source, { kind: 'whole' }, attempt(0)));
    assert.deepEqual(object.columns, expectedColumns());
    const csv = await text(object);
    assert.equal(
      csv,
      [
        'k,b,i2,i4,i8,f4,f8,n,nu,nneg,t,vc,c,nm,by,d,tm,ts,tz,j,jb,u,iv,arr,e,ip,dom',
        '1,t,-32768,2147483647,-9223372036854775808,3.4028235e+38,0.30000000000000004,-1234567890.12,' +
          '12345678901234567890.123456789,12000,"naïve ""quoted"", line\nbreak 🚀","",ab ,nm,\\xdeadbeef,' +
          '2024-02-29,13:45:00.5,2024-02-29 13:45:00.123,2024-02-29 08:45:00+00,"{""a"":[1,2]}",' +
          '"{""a"": [1, 2]}",a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11,1 day 02:03:04,"{1,NULL,3}",happy,' +
          '10.0.0.1/8,12.3',
        '2,,,0,,NaN,-Infinity,,NaN,,,,,,,0044-03-15 BC,,infinity,0044-03-15 12:00:00+00 BC,,,,,,,,0.0',
        '',
      ].join('\n'),
    );
    assert.equal(object.rows(), 2);
  });

  it('reads numeric type modifiers, refusing the scales other stores cannot hold', () => {
    const typmod = (p: number, s: number): number => ((p << 16) | (s & 0x7ff)) + 4;
    assert.deepEqual(numericModifier(typmod(12, 2)), { precision: 12, scale: 2 });
    assert.deepEqual(numericModifier(typmod(1000, 0)), { precision: 1000, scale: 0 });
    assert.equal(numericModifier(-1), undefined);
    assert.equal(numericModifier(typmod(2, -3)), undefined);
    assert.equal(numericModifier(typmod(2, 5)), undefined);
  });
});

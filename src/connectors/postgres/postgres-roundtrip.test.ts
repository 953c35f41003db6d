/**
 * PostgreSQL to PostgreSQL through the connectors, the way the node runs a copy (plan, describe,
 * prepare; read and stage per partition; commit), and then the two tables compared by the server:
 * every type, NULLs, awkward text, extreme values, a 10 MB value, an empty table.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import type { Client } from 'pg';
import type { ResolvedEndpointT } from '../../protocol/task.ts';
import { postgresSink, postgresSource } from './postgres-connector.ts';
import {
  activityCtx,
  attempt,
  createTestSchema,
  endpoint,
  planCtx,
  type TestSchema,
} from './postgres-test-kit.ts';

let db: TestSchema;
let admin: Client;
let schema: string;

const COLUMNS = `k int PRIMARY KEY, b bool, i2 int2, i4 int4, i8 int8, f4 float4, f8 float8,
  n numeric(60,12), nu numeric, t text, vc varchar(40), c char(3), by bytea, d date, tm time,
  ts timestamp, tz timestamptz, tz3 timestamptz(3), j json, jb jsonb, u uuid, iv interval,
  arr text[], e MOOD, ip inet, tt timetz, m money`;

before(async () => {
  db = await createTestSchema('pgrt');
  ({ admin, schema } = db);
  const columns = COLUMNS.replace('MOOD', `${schema}.mood`);
  await admin.query(`
    CREATE TYPE ${schema}.mood AS ENUM ('sad', 'happy', 'ünïcode 😀');
    CREATE TABLE ${schema}.src (${columns});
    CREATE TABLE ${schema}.empty (${columns});
    INSERT INTO ${schema}.src (k) VALUES (1);
    INSERT INTO ${schema}.src VALUES
      (2, true, 32767, -2147483648, 9223372036854775807, 'NaN', 'Infinity',
       '123456789012345678901234567890123456789012345678.012345678901', 'NaN',
       E'emoji 🚀👩‍👩‍👧, quotes "x" \\'y\\', comma, back\\\\slash, \\\\N, NULL, tab\\tCR\\r\\nLF\\n', '', '€ü',
       (SELECT string_agg(set_byte('\\x00'::bytea, 0, g), ''::bytea) FROM generate_series(0, 255) g),
       '0044-03-15 BC', '24:00:00', '294276-12-31 23:59:59.999999', 'infinity',
       '2024-02-29 13:45:00.123+05:30', '{"a": "ü 🚀", "b": [1, 2.50, null]}', '{"z": 1, "a": "ü 🚀"}',
       'a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11', '-1 year 2 mons 3 days -04:05:06.789',
       ARRAY['a,b', NULL, '"q"', ''], 'ünïcode 😀', '::1/128', '13:45:00+05:30', 1234.56),
      (3, false, -1, 0, -9223372036854775808, '-Infinity', 'NaN', '-0.000000000001',
       '-123456789012345678901234567890123456789012345678901234567890.5', 'NULL', 'NULL', 'ab',
       '\\x', '-infinity', '00:00:00', '-infinity', '-infinity', '1970-01-01 00:00:00+00', '[]', '{}',
       '00000000-0000-0000-0000-000000000000', '0', '{}', 'sad', '10.1.2.3', '00:00:00-12', -0.01),
      (4, NULL, NULL, NULL, NULL, 1.17549435e-38, 2.2250738585072014e-308, NULL, '0.1', repeat('ab€🚀', 1200000),
       NULL, NULL, NULL, '4713-01-01 BC', NULL, '4713-01-01 00:00:00 BC', '4713-01-01 00:00:00+00 BC',
       NULL, NULL, 'null', NULL, NULL, NULL, NULL, NULL, NULL, NULL);
    INSERT INTO ${schema}.src (k, i8, f8, nu, t, tz, jb)
    SELECT g, g::bigint * 1000003, g / 7.0, g::numeric / 7, md5(g::text), timestamptz '2020-01-01 00:00:00+00' + g * interval '1 hour 0.1 sec',
           jsonb_build_object('g', g)
      FROM generate_series(5, 3000) g;`);
});

after(async () => {
  await db.drop();
});

/** Runs one activity the way the node does, with the table split into `partitions` tasks. */
async function copy(from: string, to: string, runId: string, partitions: number): Promise<void> {
  const source = endpoint({ table: `${schema}.${from}`, partitionColumn: 'k', partitions });
  const sink: ResolvedEndpointT = endpoint({ table: `${schema}.${to}`, mode: 'create' }, {}, 'pg2');
  const plan = await postgresSource.plan(source, planCtx());
  const columns = await postgresSource.describe!(source, planCtx());
  await postgresSink.prepare!(sink, columns, activityCtx(runId));
  for (const [index, partition] of plan.partitions.entries()) {
    const ctx = attempt(index, { runId });
    const writer = await postgresSink.open(sink, ctx);
    let read = 0;
    let written = 0;
    for await (const object of postgresSource.read(source, partition, ctx)) {
      const staged = await writer.stage({
        name: object.name,
        stream: object.stream,
        columns: object.columns!,
      });
      read += object.rows() ?? NaN;
      written += staged.rows ?? NaN;
    }
    await writer.commit();
    assert.equal(written, read, `rows of task ${index}`);
  }
}

async function fingerprint(table: string): Promise<{ n: number; md5: string | null; types: string }> {
  const { rows } = await admin.query<{ n: number; md5: string | null; types: string }>(
    `SELECT count(*)::int AS n, md5(string_agg(t::text, ',' ORDER BY k)) AS md5,
            (SELECT string_agg(format_type(atttypid, atttypmod), ', ' ORDER BY attnum) FROM pg_attribute
              WHERE attrelid = '${schema}.${table}'::regclass AND attnum > 0 AND NOT attisdropped) AS types
       FROM ${schema}.${table} t`,
  );
  return rows[0]!;
}

describe('postgres to postgres', () => {
  it('copies every type and value exactly, split over tasks, into a table created like the source', async () => {
    await copy('src', 'dst', 'run-rt', 4);
    const source = await fingerprint('src');
    assert.equal(source.n, 3000);
    assert.deepEqual(await fingerprint('dst'), source);
    // Spot checks that the fingerprint is not blind to what matters.
    const { rows } = await admin.query(
      `SELECT octet_length(s.t) AS bytes_t, length(s.t) AS len, d.t = s.t AS same, d.tz::text AS tz, d.by = s.by AS bytes
         FROM ${schema}.src s JOIN ${schema}.dst d USING (k) WHERE k IN (2, 4) ORDER BY k`,
    );
    assert.deepEqual(rows, [
      { bytes_t: rows[0].bytes_t, len: rows[0].len, same: true, tz: 'infinity', bytes: true },
      // 10.8 MB of text in one value.
      { bytes_t: 9 * 1200000, len: 4 * 1200000, same: true, tz: '4713-01-01 00:00:00+00 BC', bytes: null },
    ]);
  });

  it('copies an empty table: the target is created, with no rows', async () => {
    await copy('empty', 'empty_copy', 'run-empty', 1);
    const source = await fingerprint('empty');
    assert.deepEqual(source.n, 0);
    assert.deepEqual(await fingerprint('empty_copy'), source);
  });
});

/**
 * A PostgreSQL table of awkward values out to files in every format and back into PostgreSQL, through
 * a real gateway: what comes back is what went out, row for row (NULL vs empty string, unicode, time
 * zones, 40-digit decimals, bytea, long text), and an empty table stays an empty table.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdirSync, readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { gunzipSync } from 'node:zlib';
import pg from 'pg';
import { gatewayWithNodes, runPipeline, waitRun } from './helpers/scenario.ts';

const PG = { host: '127.0.0.1', port: 5432, user: 'postgres', database: 'test' };

const COLUMNS = `k int PRIMARY KEY, b boolean, i64 bigint, f8 double precision, d numeric(60,20), dn numeric,
  t text, bin bytea, day date, ts timestamp, tz timestamptz, j jsonb, u uuid`;

test('PostgreSQL to CSV, JSON lines (gzip) and Parquet files and back: every value survives', async (t) => {
  const schema = `ferry_fmt_${process.pid}_${Date.now()}`;
  const db = new pg.Client(PG);
  await db.connect();
  t.after(async () => {
    await db.query(`DROP SCHEMA IF EXISTS "${schema}" CASCADE`);
    await db.end();
  });
  await db.query(`CREATE SCHEMA "${schema}"; SET search_path TO "${schema}";
    CREATE TABLE src (${COLUMNS});
    INSERT INTO src VALUES
      (1, true, 9223372036854775807, 0.1, '12345678901234567890123456789012345678.12345678901234567890',
       '-0.000000000000000000000000000000000000001', 'naïve "quoted", comma', '\\x00ff10', '2024-02-29',
       '2024-02-29 13:45:00.123456', '2024-02-29 13:45:00.5+05:30', '{"a": [1, 2, {"b": null}]}',
       'a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11'),
      (2, false, -9223372036854775808, -1e300, 0, 0, '', '\\x', '1970-01-01', '1970-01-01 00:00:00',
       '1970-01-01 00:00:00+00', '[]', '00000000-0000-0000-0000-000000000000'),
      (3, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL),
      (4, true, 42, 3.5, 1.5, 2.5, E'emoji 🚀 and combining e\\u0301\\nnew line\\ttab', decode(repeat('00ff', 128), 'hex'),
       '2999-12-31', '2999-12-31 23:59:59.999999', '2999-12-31 23:59:59.999999+00', '"text"', NULL),
      (5, false, 1, 2, 3, 4, repeat('long text ', 1000000), NULL, NULL, NULL, NULL, '{"k": null}', NULL);
    CREATE TABLE empty (${COLUMNS});`);

  const g = await gatewayWithNodes(t, 2);
  mkdirSync(join(g.root, 'files'), { recursive: true });
  await g.svc.api.call('POST', '/api/v1/linked-services', {
    name: 'pg',
    type: 'postgres',
    gateway: g.gateway,
    properties: { ...PG, password: '' },
  });
  await g.svc.api.call('POST', '/api/v1/linked-services', {
    name: 'files',
    type: 'filesystem',
    gateway: g.gateway,
    properties: { root: join(g.root, 'files') },
  });
  const digest = async (table: string): Promise<unknown> =>
    (
      await db.query(
        `SELECT count(*)::int AS n, md5(coalesce(string_agg(
           row(k, b, i64, f8, d, dn, t, bin, day, ts, tz, j, u)::text, '|' ORDER BY x.k), '')) AS md5
         FROM ${table} x`,
      )
    ).rows[0];

  const formats = [
    { name: 'csv', sink: { format: 'csv', csv: { delimiter: ';', nullValue: '\\N' } }, ext: '.csv' },
    { name: 'jsonl', sink: { format: 'jsonl', compression: 'gzip' }, ext: '.jsonl.gz' },
    { name: 'parquet', sink: { format: 'parquet' }, ext: '.parquet' },
  ];
  for (const f of formats) {
    for (const table of ['src', 'empty']) {
      const back = `${table}_${f.name}`;
      // JSON lines and CSV carry bytea as `\x` hex text, which bytea reads back as the same bytes.
      await db.query(`CREATE TABLE ${back} (${COLUMNS})`);
      const runId = await runPipeline(g, {
        name: `${back}-roundtrip`,
        activities: [
          {
            name: 'out',
            source: { linkedService: 'pg', table: `${schema}.${table}` },
            sink: { linkedService: 'files', path: back, ...f.sink },
          },
        ],
      });
      const out = await waitRun(g, runId, 120_000);
      assert.equal(out.status, 'succeeded', `${back} out: ${JSON.stringify(out.error)}`);
      const files = readdirSync(join(g.root, 'files', back)).filter((n) => !n.startsWith('.'));
      assert.deepEqual(files, [`part-00000${f.ext}`], back);
      const outputs = out.tasks.find((tk: any) => tk.kind === 'copy').outputs;
      assert.equal(outputs[0].rows, table === 'src' ? 5 : 0, `${back}: rows written`);
      if (f.ext.endsWith('.gz')) gunzipSync(readFileSync(join(g.root, 'files', back, files[0]!)));

      const inId = await runPipeline(g, {
        name: `${back}-back`,
        activities: [
          {
            name: 'in',
            source: { linkedService: 'files', path: back, ...f.sink },
            sink: { linkedService: 'pg', table: `${schema}.${back}` },
          },
        ],
      });
      const run = await waitRun(g, inId, 120_000);
      assert.equal(run.status, 'succeeded', `${back} back: ${JSON.stringify(run.error)}`);
      assert.deepEqual(await digest(back), await digest(table), `${back} holds what ${table} held`);
    }
  }
});

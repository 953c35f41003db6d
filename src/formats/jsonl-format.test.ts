/**
 * JSON lines as a files sink writes it and a files source reads it: each logical type's JSON form,
 * exact integers and decimals, the columns a reader infers, gzip, and the errors for lines that are
 * not objects and values JSON lines cannot carry.
 */
import assert from 'node:assert/strict';
import { gunzipSync, gzipSync } from 'node:zlib';
import { describe, it } from 'node:test';
import { FerryError } from '../common/errors.ts';
import type { TableColumn } from '../tables/table-columns.ts';
import {
  ALL_BYTES,
  TYPED_COLUMNS,
  TYPED_ROWS,
  canonical,
  decode,
  encode,
  format,
  roundTrip,
} from './test-tables.ts';

const jsonl = format({ format: 'jsonl' });

describe('jsonl: writing tables', () => {
  it('writes one object per row, each type in its JSON form', async () => {
    const { encoded, bytes } = await encode(TYPED_COLUMNS, canonical(TYPED_COLUMNS, TYPED_ROWS), jsonl);
    assert.equal(encoded.extension, '.jsonl');
    assert.equal(encoded.converted, true);
    assert.equal(encoded.rows(), 4);
    const lines = bytes.toString().split('\n');
    assert.equal(lines.length, 5);
    assert.equal(lines[4], '');
    // Integers are copied from their text: int64 extremes keep every digit.
    assert.match(
      lines[0]!,
      /^\{"i16":-32768,"i32":-2147483648,"i64":-9223372036854775808,"f32":0\.1,"f64":-1\.5e-07,/,
    );
    assert.match(lines[1]!, /"i64":9223372036854775807,/);
    // Decimals are strings, exact to the last digit; the json column is embedded, not quoted.
    assert.match(
      lines[0]!,
      /"dec":"-9999999999\.99","big":"-1234567890123456789012345678901234567890\.0123456789",/,
    );
    assert.match(
      lines[0]!,
      /"j":\{"a":\[1,2\.50,"x"\],"n":12345678901234567890\},"u":"a0eebc99-[^"]+","ok":true\}$/,
    );
    assert.match(lines[0]!, /"tz":"2024-02-29 13:45:00\.5\+00"/);
    assert.match(lines[1]!, /"txt":"","bin":"\\\\x",.*"ok":false\}$/);
    // NaN and the infinities have no JSON number: strings. NULL is null.
    assert.match(lines[2]!, /^\{"i16":null,"i32":null,"i64":null,"f32":"NaN","f64":"Infinity","dec":null,/);
    assert.match(lines[3]!, /"f64":"-Infinity"/);

    const first = JSON.parse(lines[0]!) as Record<string, unknown>;
    assert.equal(first['txt'], TYPED_ROWS[0]![7]); // unicode, quotes and line breaks, escaped
    // Binary is its canonical `\x` hex text, as in CSV.
    assert.equal(first['bin'], ALL_BYTES.toLowerCase());
  });

  it('round-trips every type, binary as its \\x hex text', async () => {
    const csv = canonical(TYPED_COLUMNS, TYPED_ROWS);
    const { table, csv: back } = await roundTrip(TYPED_COLUMNS, csv, jsonl);
    assert.equal(back, csv);
    assert.equal(table.rows(), 4);
    assert.equal(table.name, 'part-00000');
    // Columns from the first line: numbers decimal, strings text, objects json, booleans boolean.
    const types = Object.fromEntries(table.columns.map((c) => [c.name, c.type]));
    assert.deepEqual(types, {
      i16: 'decimal',
      i32: 'decimal',
      i64: 'decimal',
      f32: 'decimal',
      f64: 'decimal',
      dec: 'text',
      big: 'text',
      txt: 'text',
      bin: 'text',
      d: 'text',
      tm: 'text',
      ts: 'text',
      tz: 'text',
      j: 'json',
      u: 'text',
      ok: 'boolean',
    });
  });

  it('round-trips a 10 MB text value', async () => {
    const columns: TableColumn[] = [{ name: 'body', type: 'text', nullable: true }];
    const csv = canonical(columns, [['😀"\\\n\u0001'.repeat(2 * 1024 * 1024)], ['']]);
    const { csv: back } = await roundTrip(columns, csv, jsonl);
    assert.ok(back === csv, 'the 10 MB value came back changed');
  });

  it('keeps a multi-line JSON document on one line', async () => {
    const columns: TableColumn[] = [{ name: 'doc', type: 'json', nullable: true }];
    const { bytes } = await encode(columns, canonical(columns, [['{\n  "a": 1,\r\n  "b": "x"\n}']]), jsonl);
    assert.equal(bytes.toString(), '{"doc":{   "a": 1,    "b": "x" }}\n');
  });

  it('writes an empty table as an empty file, which reads back as no columns and no rows', async () => {
    const { bytes, encoded } = await encode(TYPED_COLUMNS, canonical(TYPED_COLUMNS, []), jsonl);
    assert.equal(bytes.length, 0);
    assert.equal(encoded.rows(), 0);
    const { table, csv } = await decode('empty.jsonl', bytes, jsonl);
    assert.deepEqual(table.columns, []);
    assert.equal(csv, '');
    assert.equal(table.rows(), 0);
  });

  it('gzips, and reads the gzip back', async () => {
    const csv = canonical(TYPED_COLUMNS, TYPED_ROWS);
    const f = format({ format: 'jsonl', compression: 'gzip' });
    const { encoded, bytes, csv: back } = await roundTrip(TYPED_COLUMNS, csv, f);
    assert.equal(encoded.extension, '.jsonl.gz');
    assert.match(gunzipSync(bytes).toString(), /^\{"i16":-32768,/);
    assert.equal(back, csv);
  });

  it('refuses values the column type cannot be, naming the column', async () => {
    const cases: [TableColumn, string, RegExp][] = [
      [{ name: 'n', type: 'int64', nullable: true }, '12x', /column "n": value "12x" is not an int64/],
      [
        { name: 'doc', type: 'json', nullable: true },
        '{"a":',
        /column "doc": value "\{\\"a\\":" is not a JSON document/,
      ],
      [
        { name: 'b', type: 'binary', nullable: true },
        'deadbeef',
        /column "b": value "deadbeef" is not binary/,
      ],
      [
        { name: 'ok', type: 'boolean', nullable: true },
        'maybe',
        /column "ok": value "maybe" is not a boolean/,
      ],
    ];
    for (const [column, value, message] of cases) {
      await assert.rejects(encode([column], canonical([column], [[value]]), jsonl), (err: unknown) => {
        assert.ok(err instanceof FerryError);
        assert.equal(err.code, 'bad_request');
        assert.match(err.message, /^writing jsonl: /);
        assert.match(err.message, message);
        return true;
      });
    }
  });
});

describe('jsonl: reading files as tables', () => {
  it('keeps numbers as written, fills missing keys with NULL, skips blank lines and CRLF', async () => {
    const file =
      '{"id":12345678901234567890123,"x":1.50,"on":true,"tags":["a",1e400]}\r\n\n{"id":2,"on":false}\n   \n{"x":null,"tags":{"k":0.1000}}';
    const { table, csv } = await decode('in/events.jsonl', file, jsonl);
    assert.equal(table.name, 'in/events');
    assert.deepEqual(
      table.columns.map((c) => [c.name, c.type]),
      [
        ['id', 'decimal'],
        ['x', 'decimal'],
        ['on', 'boolean'],
        ['tags', 'json'],
      ],
    );
    assert.equal(
      csv,
      'id,x,on,tags\n12345678901234567890123,1.50,t,"[""a"",1e400]"\n2,,f,\n,,,"{""k"":0.1000}"\n',
    );
    assert.equal(table.rows(), 3);
  });

  it('reads a gzipped file by its .gz name', async () => {
    const { table, csv } = await decode('x.jsonl.gz', gzipSync('{"a":"b"}\n'), jsonl);
    assert.equal(table.name, 'x');
    assert.equal(csv, 'a\nb\n');
  });

  it('fails on a line that is not an object, naming the file and line', async () => {
    await assert.rejects(decode('rows.jsonl', '{"a":1}\n{"a":2}\n[1,2]\n', jsonl), (err: unknown) => {
      assert.ok(err instanceof FerryError);
      assert.equal(err.code, 'bad_request');
      assert.equal(
        err.message,
        'test source "in": rows.jsonl line 3: an array, not a JSON object (JSON lines holds one object per row)',
      );
      return true;
    });
    await assert.rejects(
      decode('rows.jsonl', '42\n', jsonl),
      /rows\.jsonl line 1: a number, not a JSON object/,
    );
  });

  it('fails on a line that is not JSON, and on a key the first line did not have', async () => {
    await assert.rejects(decode('bad.jsonl', '{"a":1}\n{"a":\n', jsonl), /bad\.jsonl line 2: not valid JSON/);
    await assert.rejects(
      decode('extra.jsonl', '{"a":1}\n{"a":2,"b":3}\n', jsonl),
      /extra\.jsonl line 2: key "b" is not a column \(the columns are the keys of the first line\)/,
    );
  });
});

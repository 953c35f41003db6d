/**
 * CSV as a files sink writes it and a files source reads it: canonical pass-through, every dialect
 * option, NULL against empty string, character encodings, gzip, and the errors a bad file or an
 * unwritable value give.
 */
import assert from 'node:assert/strict';
import { Readable } from 'node:stream';
import { gunzipSync, gzipSync } from 'node:zlib';
import { describe, it } from 'node:test';
import { FerryError } from '../common/errors.ts';
import type { TableColumn } from '../tables/table-columns.ts';
import { encodeTable } from './encode-table.ts';
import { compileFormat } from './file-format.ts';
import {
  AWKWARD_TEXT,
  TYPED_COLUMNS,
  TYPED_ROWS,
  canonical,
  decode,
  encode,
  format,
  generated,
  roundTrip,
} from './test-tables.ts';

const TEXT2: TableColumn[] = [
  { name: 'id', type: 'int32', nullable: false },
  { name: 'v', type: 'text', nullable: true },
];

/** The data rows of canonical CSV (decoded CSV names its columns c1, c2, ... without a header). */
const dataRows = (csv: string): string => csv.slice(csv.indexOf('\n') + 1);

describe('csv: writing tables', () => {
  it('passes canonical CSV through untouched and uncounted', async () => {
    const csv = canonical(TYPED_COLUMNS, TYPED_ROWS);
    const input = Readable.from([Buffer.from(csv)]);
    const { encoded, bytes } = await encode(TYPED_COLUMNS, input, format({ format: 'csv' }));
    assert.equal(encoded.converted, false);
    assert.equal(encoded.extension, '.csv');
    assert.equal(encoded.rows(), undefined);
    assert.equal(bytes.toString(), csv);
  });

  it('round-trips every type, NULL vs empty string, unicode, quotes and line breaks through a dialect', async () => {
    const csv = canonical(TYPED_COLUMNS, TYPED_ROWS);
    const f = format({ format: 'csv', csv: { delimiter: ';', quote: "'", nullValue: '\\N' } });
    const { encoded, bytes, table, csv: back } = await roundTrip(TYPED_COLUMNS, csv, f);
    assert.equal(encoded.converted, true);
    assert.equal(encoded.rows(), TYPED_ROWS.length);
    assert.equal(back, csv);
    assert.equal(table.rows(), TYPED_ROWS.length);
    assert.deepEqual(
      table.columns.map((c) => [c.name, c.type]),
      TYPED_COLUMNS.map((c) => [c.name, 'text']),
    );
    const lines = bytes.toString().split('\n');
    assert.equal(lines[0], TYPED_COLUMNS.map((c) => c.name).join(';'));
    // NULL is the NULL text unquoted; an empty string is quoted.
    assert.match(
      bytes.toString(),
      /\n32767;2147483647;9223372036854775807;3\.4028235e\+38;1e\+20;0\.00;\d+;'';/,
    );
    assert.match(bytes.toString(), /\n\\N;\\N;\\N;NaN;Infinity;\\N;/);
  });

  it('quotes a value that equals the NULL text, so it does not read back as NULL', async () => {
    const csv = canonical(TEXT2, [
      ['1', '\\N'],
      ['2', null],
      ['3', ''],
    ]);
    const f = format({ format: 'csv', csv: { nullValue: '\\N' } });
    const { bytes, csv: back } = await roundTrip(TEXT2, csv, f);
    assert.equal(bytes.toString(), 'id,v\n1,"\\N"\n2,\\N\n3,""\n');
    assert.equal(back, csv);
  });

  it('writes no header when asked; the reader then names the columns c1, c2, ...', async () => {
    const csv = canonical(TEXT2, [
      ['1', 'a'],
      ['2', null],
    ]);
    const f = format({ format: 'csv', csv: { header: false } });
    const { bytes, table, csv: back } = await roundTrip(TEXT2, csv, f);
    assert.equal(bytes.toString(), '1,a\n2,\n');
    assert.deepEqual(
      table.columns.map((c) => c.name),
      ['c1', 'c2'],
    );
    assert.equal(back, `c1,c2\n${dataRows(csv)}`);
  });

  it('writes and reads latin1, byte for byte', async () => {
    const csv = canonical(TEXT2, [['1', 'naïve café ÿ ß']]);
    const f = format({ format: 'csv', csv: { encoding: 'latin1' } });
    const { bytes, csv: back } = await roundTrip(TEXT2, csv, f);
    assert.deepEqual(bytes, Buffer.from('id,v\n1,naïve café ÿ ß\n', 'latin1'));
    assert.equal(bytes.length, 'id,v\n1,naïve café ÿ ß\n'.length); // one byte per character
    assert.equal(back, csv);
  });

  it('refuses a character latin1 cannot hold, naming the column, rather than writing "?"', async () => {
    const csv = canonical(TEXT2, [
      ['1', 'ok'],
      ['2', 'price: 5 €'],
    ]);
    const f = format({ format: 'csv', csv: { encoding: 'latin1' } });
    await assert.rejects(encode(TEXT2, csv, f), (err: unknown) => {
      assert.ok(err instanceof FerryError);
      assert.equal(err.code, 'bad_request');
      assert.equal(err.retryable, false);
      assert.match(
        err.message,
        /column "v": value "price: 5 €" has "€" \(U\+20AC\), which the latin1 encoding cannot hold/,
      );
      return true;
    });
  });

  it('writes and reads utf16le, emoji included; reads a file with a byte order mark', async () => {
    const csv = canonical(TEXT2, [
      ['1', AWKWARD_TEXT],
      ['2', null],
    ]);
    const f = format({ format: 'csv', csv: { encoding: 'utf16le', delimiter: ';' } });
    const { bytes, csv: back } = await roundTrip(TEXT2, csv, f);
    assert.equal(bytes.subarray(0, 6).toString('utf16le'), 'id;');
    assert.equal(back, csv);
    const withBom = Buffer.concat([Buffer.from([0xff, 0xfe]), bytes]);
    assert.equal((await decode('bom.csv', withBom, f)).csv, csv);
  });

  it('round-trips a 10 MB text value', async () => {
    const big = 'é"x;\n'.repeat(2 * 1024 * 1024);
    const csv = canonical(TEXT2, [
      ['1', big],
      ['2', 'small'],
    ]);
    const { csv: back } = await roundTrip(TEXT2, csv, format({ format: 'csv', csv: { delimiter: ';' } }));
    assert.ok(back === csv, 'the 10 MB value came back changed');
  });

  it('stops with "cancelled" when the attempt is cancelled mid-table', async () => {
    const source = generated(Number.MAX_SAFE_INTEGER, (i) => `${i},v\n`, 'id,v\n');
    const controller = new AbortController();
    const encoded = encodeTable(
      TEXT2,
      source.stream,
      format({ format: 'csv', csv: { delimiter: '|' } }),
      controller.signal,
    );
    let chunks = 0;
    await assert.rejects(
      (async () => {
        for await (const _ of encoded.stream) if (++chunks === 3) controller.abort();
      })(),
      (err: unknown) => err instanceof FerryError && err.code === 'cancelled',
    );
    assert.ok(source.stream.destroyed, 'the table stream is released');
  });

  it('writes an empty table as its header alone, and reads it back', async () => {
    const csv = canonical(TYPED_COLUMNS, []);
    const f = format({ format: 'csv', csv: { delimiter: '|' } });
    const { bytes, encoded, table, csv: back } = await roundTrip(TYPED_COLUMNS, csv, f);
    assert.equal(bytes.toString(), `${TYPED_COLUMNS.map((c) => c.name).join('|')}\n`);
    assert.equal(encoded.rows(), 0);
    assert.equal(table.rows(), 0);
    assert.equal(back, csv);
  });

  it('gzips canonical CSV without parsing it, and any dialect after encoding it', async () => {
    const csv = canonical(TYPED_COLUMNS, TYPED_ROWS);
    const plain = await roundTrip(TYPED_COLUMNS, csv, format({ format: 'csv', compression: 'gzip' }));
    assert.equal(plain.encoded.extension, '.csv.gz');
    assert.equal(plain.encoded.converted, true);
    assert.equal(plain.encoded.rows(), undefined);
    assert.equal(gunzipSync(plain.bytes).toString(), csv);
    assert.equal(plain.csv, csv);

    const f = format({ format: 'csv', compression: 'gzip', csv: { quote: "'", nullValue: 'NULL' } });
    const dialect = await roundTrip(TYPED_COLUMNS, csv, f);
    assert.equal(dialect.encoded.rows(), TYPED_ROWS.length);
    assert.match(gunzipSync(dialect.bytes).toString(), /\nNULL,NULL,NULL,NaN,Infinity,NULL,/);
    assert.equal(dialect.csv, csv);
  });

  it('streams with backpressure: reading the first chunk does not pull the whole table', async () => {
    const total = 500_000;
    const source = generated(total, (i) => `${i},"row ${i}, with a comma"\n`, 'id,v\n');
    const encoded = encodeTable(
      TEXT2,
      source.stream,
      format({ format: 'csv', csv: { delimiter: '\t' } }),
      new AbortController().signal,
    );
    for await (const chunk of encoded.stream) {
      assert.ok((chunk as Buffer).length > 0);
      break; // destroys the stream
    }
    assert.ok(source.produced() < total / 5, `produced ${source.produced()} of ${total} rows`);
  });
});

describe('csv: reading files as tables', () => {
  const f = format({ format: 'csv' });

  it('takes the columns from the header, all text, and names the table after the file', async () => {
    const { table, csv } = await decode('dir/orders.csv', 'id,name\n1,"a ""b"""\n2,\n3,""\n', f);
    assert.equal(table.name, 'dir/orders');
    assert.deepEqual(table.columns, [
      { name: 'id', type: 'text', nullable: true },
      { name: 'name', type: 'text', nullable: true },
    ]);
    assert.equal(csv, 'id,name\n1,"a ""b"""\n2,\n3,""\n');
    assert.equal(table.rows(), 3);
  });

  it('reads CRLF line ends and a UTF-8 byte order mark', async () => {
    const { table, csv } = await decode('x.csv', '\ufeffid,v\r\n1,a\r\n2,"b\r\nc"\r\n', f);
    assert.deepEqual(
      table.columns.map((c) => c.name),
      ['id', 'v'],
    );
    assert.equal(csv, 'id,v\n1,a\n2,"b\r\nc"\n');
  });

  it('gunzips a .gz name, and any name when compression is gzip', async () => {
    const bytes = gzipSync('a,b\n1,2\n');
    const byName = await decode('x.csv.gz', bytes, f);
    assert.equal(byName.table.name, 'x');
    assert.equal(byName.csv, 'a,b\n1,2\n');
    const byOption = await decode('x.dat', bytes, format({ format: 'csv', compression: 'gzip' }));
    assert.equal(byOption.table.name, 'x');
    assert.equal(byOption.csv, 'a,b\n1,2\n');
  });

  it('fails on an unterminated quote, naming the file and the line the field starts on', async () => {
    await assert.rejects(decode('bad.csv', 'a,b\n1,2\n3,"never closed\n4,5\n', f), (err: unknown) => {
      assert.ok(err instanceof FerryError);
      assert.equal(err.code, 'bad_request');
      assert.equal(err.retryable, false);
      assert.equal(
        err.message,
        'test source "in": bad.csv line 3: malformed CSV: a quoted field is never closed (unterminated quote)',
      );
      return true;
    });
  });

  it('fails on a row with the wrong number of fields, naming the file and line', async () => {
    await assert.rejects(
      decode('short.csv', 'a,b\n1,2\n3\n', f),
      /short\.csv line 3: malformed CSV: .*expect 2, got 1/,
    );
  });

  it('refuses a header that names a column twice', async () => {
    await assert.rejects(
      decode('dup.csv', 'a,a\n1,2\n', f),
      /dup\.csv line 1: the header names column "a" twice/,
    );
  });

  it('fails clearly on a .gz name whose bytes are not gzip', async () => {
    await assert.rejects(
      decode('plain.csv.gz', 'a,b\n', f),
      /test source "in": plain\.csv\.gz: not gzip data/,
    );
  });

  it('refuses dialects it could not read back', () => {
    assert.throws(
      () => compileFormat({ csv: { delimiter: '"' } }, 'sink "s"'),
      /delimiter and quote are both/,
    );
    assert.throws(
      () => compileFormat({ csv: { delimiter: ';', nullValue: 'a;b' } }, 'sink "s"'),
      /sink "s": csv: nullValue "a;b" holds a delimiter/,
    );
  });
});

/**
 * Parquet as a files sink writes it and a files source reads it, through the converter process:
 * the schema each logical type gets (checked by reading the file's own schema), exact round trips,
 * values Parquet cannot hold, files that are not Parquet, and the converter's lifecycle (a broken
 * source fails the file instead of ending it short, cancellation kills the converter, its temporary
 * folder goes).
 */
import assert from 'node:assert/strict';
import { access, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { Readable } from 'node:stream';
import { buffer, text } from 'node:stream/consumers';
import { gunzipSync } from 'node:zlib';
import { after, before, describe, it } from 'node:test';
import { DuckDBInstance, type DuckDBConnection } from '@duckdb/node-api';
import { FerryError } from '../common/errors.ts';
import type { TableColumn } from '../tables/table-columns.ts';
import { decodeTable, describeTable } from './decode-table.ts';
import { runDuckdb } from './duckdb-job.ts';
import { encodeTable } from './encode-table.ts';
import {
  TYPED_COLUMNS,
  TYPED_ROWS,
  canonical,
  decode,
  encode,
  format,
  generated,
  roundTrip,
} from './test-tables.ts';

const parquet = format({ format: 'parquet' });
let dir: string;
let duckdb: DuckDBConnection;

before(async () => {
  dir = await mkdtemp(path.join(tmpdir(), 'ferry-parquet-test-'));
  duckdb = await (await DuckDBInstance.create(':memory:')).connect();
});

after(async () => {
  duckdb.closeSync();
  await rm(dir, { recursive: true, force: true });
});

let files = 0;
async function saved(bytes: Buffer): Promise<string> {
  const file = path.join(dir, `f${++files}.parquet`);
  await writeFile(file, bytes);
  return file;
}

/** The file's own schema, as Parquet states it: [name, physical type, logical type]. */
async function schemaOf(file: string): Promise<Record<string, string>> {
  const reader = await duckdb.runAndReadAll(
    `SELECT name, type, coalesce(logical_type::VARCHAR, converted_type, '') AS logical
       FROM parquet_schema('${file}') WHERE type IS NOT NULL`,
  );
  return Object.fromEntries(
    reader.getRows().map(([n, t, l]) => [String(n), `${String(t)} ${String(l)}`.trim()]),
  );
}

function rejectsWith(code: string, message: RegExp): (err: unknown) => boolean {
  return (err) => {
    assert.ok(err instanceof FerryError, String(err));
    assert.equal(err.code, code);
    assert.match(err.message, message);
    return true;
  };
}

describe('parquet: writing tables', () => {
  it('round-trips every type exactly: int64 extremes, 50-digit decimals, all 256 bytes, unicode, NULL vs ""', async () => {
    const csv = canonical(TYPED_COLUMNS, TYPED_ROWS);
    const { encoded, bytes, table, csv: back } = await roundTrip(TYPED_COLUMNS, csv, parquet);
    assert.equal(encoded.extension, '.parquet');
    assert.equal(encoded.converted, true);
    assert.equal(encoded.rows(), TYPED_ROWS.length);
    assert.equal(bytes.subarray(0, 4).toString(), 'PAR1');
    assert.equal(back, csv);
    assert.equal(table.rows(), TYPED_ROWS.length);
    assert.deepEqual(
      table.columns.map((c) => [c.name, c.type, c.precision, c.scale]),
      [
        ['i16', 'int16', undefined, undefined],
        ['i32', 'int32', undefined, undefined],
        ['i64', 'int64', undefined, undefined],
        ['f32', 'float32', undefined, undefined],
        ['f64', 'float64', undefined, undefined],
        ['dec', 'decimal', 12, 2],
        ['big', 'text', undefined, undefined], // no Parquet DECIMAL holds it: written as a string
        ['txt', 'text', undefined, undefined],
        ['bin', 'binary', undefined, undefined],
        ['d', 'date', undefined, undefined],
        ['tm', 'time', undefined, undefined],
        ['ts', 'timestamp', undefined, undefined],
        ['tz', 'timestamptz', undefined, undefined],
        ['j', 'json', undefined, undefined],
        ['u', 'uuid', undefined, undefined],
        ['ok', 'boolean', undefined, undefined],
      ],
    );
  });

  it('gives each logical type its Parquet type', async () => {
    const { bytes } = await encode(TYPED_COLUMNS, canonical(TYPED_COLUMNS, TYPED_ROWS.slice(0, 1)), parquet);
    const schema = await schemaOf(await saved(bytes));
    assert.match(schema['i16']!, /^INT32 INT_16/);
    assert.match(schema['i32']!, /^INT32( INT_32)?$/);
    assert.match(schema['i64']!, /^INT64( INT_64)?$/);
    assert.equal(schema['f32'], 'FLOAT');
    assert.equal(schema['f64'], 'DOUBLE');
    assert.match(schema['dec']!, /^(INT64|FIXED_LEN_BYTE_ARRAY) DecimalType\(scale=2, precision=12\)/);
    assert.match(schema['big']!, /^BYTE_ARRAY (StringType|UTF8)/);
    assert.match(schema['txt']!, /^BYTE_ARRAY (StringType|UTF8)/);
    assert.equal(schema['bin'], 'BYTE_ARRAY');
    assert.match(schema['d']!, /^INT32 (DateType|DATE)/);
    assert.match(schema['tm']!, /^INT64 TimeType\(isAdjustedToUTC=0, unit=.*MICROS=MicroSeconds/);
    assert.match(schema['ts']!, /^INT64 TimestampType\(isAdjustedToUTC=0, unit=.*MICROS=MicroSeconds/);
    assert.match(schema['tz']!, /^INT64 TimestampType\(isAdjustedToUTC=1, unit=.*MICROS=MicroSeconds/);
    assert.match(schema['j']!, /^BYTE_ARRAY (JsonType|JSON)/);
    assert.match(schema['u']!, /^FIXED_LEN_BYTE_ARRAY UUIDType/);
    assert.equal(schema['ok'], 'BOOLEAN');
  });

  it('round-trips a 10 MB text value', async () => {
    const columns: TableColumn[] = [
      { name: 'id', type: 'int64', nullable: false },
      { name: 'body', type: 'text', nullable: true },
    ];
    const big = 'é"x,\n'.repeat(2 * 1024 * 1024); // 10 MB of UTF-8 that needs quoting
    const csv = canonical(columns, [
      ['1', big],
      ['2', 'small'],
    ]);
    const { csv: back, table } = await roundTrip(columns, csv, parquet);
    assert.equal(table.rows(), 2);
    assert.ok(back === csv, 'the 10 MB value came back changed');
  });

  it('writes an empty table with its schema, and reads back the header alone', async () => {
    const csv = canonical(TYPED_COLUMNS, []);
    const { encoded, table, csv: back } = await roundTrip(TYPED_COLUMNS, csv, parquet);
    assert.equal(encoded.rows(), 0);
    assert.equal(table.rows(), 0);
    assert.equal(table.columns.length, TYPED_COLUMNS.length);
    assert.equal(back, csv);
  });

  it('gzips the file when asked, and reads the gzip back', async () => {
    const csv = canonical(TYPED_COLUMNS, TYPED_ROWS);
    const {
      encoded,
      bytes,
      csv: back,
    } = await roundTrip(TYPED_COLUMNS, csv, format({ format: 'parquet', compression: 'gzip' }));
    assert.equal(encoded.extension, '.parquet.gz');
    assert.equal(gunzipSync(bytes).subarray(0, 4).toString(), 'PAR1');
    assert.equal(back, csv);
  });

  it('refuses values Parquet cannot hold, naming the column and the value', async () => {
    const d: TableColumn = { name: 'shipped on', type: 'date', nullable: true };
    const ts: TableColumn = { name: 'at', type: 'timestamptz', nullable: true };
    const dec: TableColumn = { name: 'price', type: 'decimal', precision: 12, scale: 2, nullable: true };
    const j: TableColumn = { name: 'doc', type: 'json', nullable: true };
    const small: TableColumn = { name: 'small', type: 'int16', nullable: true };
    const cases: [TableColumn, string, RegExp][] = [
      [d, 'infinity', /column "shipped on": value "infinity" cannot be written as Parquet DATE/],
      [d, '0044-03-15 BC', /column "shipped on": value "0044-03-15 BC" cannot be written as Parquet DATE/],
      [ts, '-infinity', /column "at": value "-infinity" cannot be written as Parquet TIMESTAMP \(UTC\)/],
      [ts, '0044-03-15 10:00:00+00 BC', /column "at": value "0044-03-15 10:00:00\+00 BC" cannot be written/],
      [dec, '-Infinity', /column "price": value "-Infinity" cannot be written as Parquet DECIMAL\(12,2\)/],
      [dec, 'NaN', /column "price": value "NaN" cannot be written as Parquet DECIMAL\(12,2\)/],
      [dec, '12345678901.00', /column "price": value "12345678901\.00" cannot be written as Parquet DECIMAL/],
      [
        dec,
        '9'.repeat(70),
        new RegExp(
          `column "price": value "${'9'.repeat(60)}\\.\\.\\." cannot be written as Parquet DECIMAL\\(12,2\\)$`,
        ),
      ],
      [small, '4"0', /column "small": value "4\\"0" cannot be written as Parquet SMALLINT$/],
      [j, '{"a":', /column "doc": value "\{\\"a\\":" cannot be written as Parquet JSON/],
    ];
    for (const [column, value, message] of cases) {
      await assert.rejects(
        encode([column], canonical([column], [[value]]), parquet),
        rejectsWith('bad_request', message),
      );
    }
    // The checks compute each cast once beside the columns: a column named like those values is
    // still itself.
    const cast0: TableColumn = { ...d, name: '_cast0' };
    const cast1: TableColumn = { ...ts, name: '_cast1' };
    const csv = canonical(
      [cast0, cast1],
      [
        ['2024-02-29', '2024-02-29 13:45:00.5+00'],
        [null, null],
      ],
    );
    assert.equal((await roundTrip([cast0, cast1], csv, parquet)).csv, csv);
    await assert.rejects(
      encode([cast0, cast1], canonical([cast0, cast1], [['2024-02-29', 'infinity']]), parquet),
      rejectsWith('bad_request', /column "_cast1": value "infinity" cannot be written as Parquet TIMESTAMP/),
    );
    const body: TableColumn = { name: 'body', type: 'text', nullable: true };
    await assert.rejects(
      encode([body], canonical([body], [['x'], ['y'.repeat(17 * 1024 * 1024)]]), parquet),
      rejectsWith('bad_request', /^writing parquet: line 3 of the table: a row longer than 16 MB/),
    );
    await assert.rejects(
      encode([small], canonical([small], [['40000']]), parquet),
      rejectsWith(
        'bad_request',
        /^writing parquet: column "small": value "40000" cannot be written as Parquet SMALLINT$/,
      ),
    );
    await assert.rejects(
      encode([dec], canonical([dec], [['1.00'], ['NaN']]), parquet),
      rejectsWith('bad_request', /^writing parquet: column "price": value "NaN"/),
    );
  });

  it('fails the file, rather than ending it short, when the table stream breaks', async () => {
    const columns: TableColumn[] = [{ name: 'n', type: 'int64', nullable: false }];
    async function* broken(): AsyncGenerator<string> {
      yield 'n\n';
      for (let i = 0; i < 1000; i++) yield `${i}\n`;
      throw new FerryError('store_unreachable', 'postgres "pg1": connection lost (read)');
    }
    const encoded = encodeTable(columns, Readable.from(broken()), parquet, new AbortController().signal);
    await assert.rejects(buffer(encoded.stream), rejectsWith('store_unreachable', /connection lost/));
  });

  it('streams: output starts long before a large table has been read', async () => {
    const columns: TableColumn[] = [
      { name: 'id', type: 'int64', nullable: false },
      { name: 'v', type: 'text', nullable: true },
    ];
    const total = 1_000_000;
    // Rows of about 100 bytes: 100 MB, well beyond what the pipes and DuckDB's 32 MB buffer hold.
    const source = generated(total, (i) => `${i},${'value '.repeat(15)}${i}\n`, 'id,v\n');
    const encoded = encodeTable(columns, source.stream, parquet, new AbortController().signal);
    let received = 0;
    let producedAtFirstRowGroup = -1;
    for await (const chunk of encoded.stream) {
      received += (chunk as Buffer).length;
      if (producedAtFirstRowGroup < 0 && received > 64 * 1024) producedAtFirstRowGroup = source.produced();
    }
    assert.equal(encoded.rows(), total);
    assert.ok(
      producedAtFirstRowGroup > 0 && producedAtFirstRowGroup < total / 2,
      `${producedAtFirstRowGroup} of ${total} rows read when the first row group arrived`,
    );
  });

  it('reuses a converter after a clean job, never after a failed one', async () => {
    const columns: TableColumn[] = [{ name: 'n', type: 'int64', nullable: false }];
    const job = async (rows: string): Promise<{ pid: number | undefined; out: Promise<Buffer> }> => {
      const run = runDuckdb(
        {
          kind: 'write-parquet',
          dir: await mkdtemp(path.join(tmpdir(), 'ferry-parquet-test-job-')),
          columns,
        },
        Readable.from([Buffer.from(`n\n${rows}`)]),
        new AbortController().signal,
        (m) => new FerryError('bad_request', m),
      );
      const out = buffer(run.output);
      out.catch(() => {});
      await run.exited;
      return { pid: run.pid, out };
    };
    const first = await job('1\n2\n');
    assert.ok((await first.out).length > 0);
    const second = await job('3\n');
    assert.equal(second.pid, first.pid, 'the idle converter took the next job');
    assert.ok((await second.out).subarray(0, 4).equals(Buffer.from('PAR1')));
    const bad = await job('not a number\n');
    assert.equal(bad.pid, first.pid);
    await assert.rejects(bad.out, rejectsWith('bad_request', /not a number/));
    const fresh = await job('4\n');
    assert.notEqual(fresh.pid, bad.pid, 'a converter that failed is not reused');
    await fresh.out;
  });

  it('describes a file with no pipes and no output, and keeps the converter for the next job', async () => {
    const columns: TableColumn[] = [
      { name: 'n', type: 'int64', nullable: false },
      { name: 'label', type: 'text', nullable: true },
    ];
    const { bytes } = await encode(columns, canonical(columns, [['1', 'a']]), parquet);
    const dir = await mkdtemp(path.join(tmpdir(), 'ferry-parquet-test-'));
    const file = path.join(dir, 'one.parquet');
    await writeFile(file, bytes);
    const job = (kind: 'describe-parquet' | 'read-parquet', jobDir: string) =>
      runDuckdb({ kind, dir: jobDir, file }, undefined, new AbortController().signal, (m) => {
        return new FerryError('bad_request', m);
      });
    try {
      const jobDir = await mkdtemp(path.join(tmpdir(), 'ferry-parquet-test-job-'));
      const described = job('describe-parquet', jobDir);
      assert.deepEqual(
        (await described.columns).map((c) => `${c.name}:${c.type}`),
        ['n:int64', 'label:text'],
      );
      await described.exited;
      assert.equal(described.rows(), 0);
      await assert.rejects(access(jobDir), /ENOENT/);
      const read = job('read-parquet', await mkdtemp(path.join(tmpdir(), 'ferry-parquet-test-job-')));
      assert.equal(await text(read.output), 'n,label\n1,a\n');
      assert.equal(read.pid, described.pid, 'the describing converter took the next job');
      await read.exited;
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });

  it('kills the converter and removes its folder when the copy is cancelled', async () => {
    const columns: TableColumn[] = [{ name: 'n', type: 'int64', nullable: false }];
    const jobDir = await mkdtemp(path.join(tmpdir(), 'ferry-parquet-test-job-'));
    const endless = generated(Number.MAX_SAFE_INTEGER, (i) => `${i}\n`, 'n\n');
    const controller = new AbortController();
    const run = runDuckdb(
      { kind: 'write-parquet', dir: jobDir, columns },
      endless.stream,
      controller.signal,
      (m) => {
        return new FerryError('bad_request', m);
      },
    );
    const output = buffer(run.output);
    while (endless.produced() < 50_000) await new Promise((r) => setTimeout(r, 10));
    controller.abort();
    await assert.rejects(output, rejectsWith('cancelled', /cancelled/));
    await run.exited;
    await assert.rejects(access(jobDir), /ENOENT/);
  });

  it('delivers a small result to a node too busy to open the output before the converter is done', async () => {
    const columns: TableColumn[] = [{ name: 'n', type: 'int64', nullable: false }];
    const { bytes } = await encode(columns, canonical(columns, [['1'], ['2']]), parquet);
    const dir = await mkdtemp(path.join(tmpdir(), 'ferry-parquet-test-'));
    const file = path.join(dir, 'small.parquet');
    await writeFile(file, bytes);
    const jobDir = await mkdtemp(path.join(tmpdir(), 'ferry-parquet-test-job-'));
    const run = runDuckdb(
      { kind: 'read-parquet', dir: jobDir, file },
      undefined,
      new AbortController().signal,
      (m) => new FerryError('bad_request', m),
    );
    // The node is busy for longer than the (warm) converter needs for the whole job, whose result
    // fits in the pipe's buffer: the converter must not let it go before the node has its end open.
    const until = Date.now() + 1500;
    while (Date.now() < until);
    let timer: NodeJS.Timeout | undefined;
    const late = new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(new Error('the output never ended')), 20_000);
    });
    try {
      assert.equal((await Promise.race([text(run.output), late])).toString(), 'n\n1\n2\n');
    } finally {
      clearTimeout(timer);
      await rm(dir, { recursive: true, force: true });
    }
    await run.exited;
    assert.equal(run.rows(), 2);
  });

  it('kills the converter when the consumer stops reading early', async () => {
    const columns: TableColumn[] = [{ name: 'n', type: 'int64', nullable: false }];
    const jobDir = await mkdtemp(path.join(tmpdir(), 'ferry-parquet-test-job-'));
    const endless = generated(Number.MAX_SAFE_INTEGER, (i) => `${i}\n`, 'n\n');
    const run = runDuckdb(
      { kind: 'write-parquet', dir: jobDir, columns },
      endless.stream,
      new AbortController().signal,
      (m) => new FerryError('bad_request', m),
    );
    for await (const chunk of run.output) {
      assert.ok((chunk as Buffer).length > 0);
      break;
    }
    await run.exited;
    await assert.rejects(access(jobDir), /ENOENT/);
    assert.ok(endless.stream.destroyed, 'the source is released');
  });
});

describe('parquet: reading files as tables', () => {
  it('maps the schema of a Parquet file written elsewhere to logical types and canonical text', async () => {
    const file = path.join(dir, 'foreign.parquet');
    await duckdb.run(`COPY (SELECT * FROM (VALUES
        (1::TINYINT, 18446744073709551615::UBIGINT, 12345678901234567890123456789012345678::DECIMAL(38,0),
         -0.0::DOUBLE, 1.0::DOUBLE, 'nan'::DOUBLE, 0.5::FLOAT, '2024-02-29 13:45:00.123456789'::TIMESTAMP_NS,
         [1, 2], {'k': 'v', 'n': 1.5}, MAP {'a': 1}, INTERVAL 3 DAY, 'x'::BLOB, true),
        (NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL)
      ) t(ti, ub, hi, negzero, whole, nan, fl, tsns, list, struct, map, iv, bl, bo)) TO '${file}' (FORMAT parquet)`);
    const bytes = await readFile(file);
    const { table, csv } = await decode('foreign.parquet', bytes, parquet);
    assert.deepEqual(
      table.columns.map(
        (c) => `${c.name}:${c.type}${c.precision !== undefined ? `(${c.precision},${c.scale})` : ''}`,
      ),
      [
        'ti:int16',
        'ub:decimal(20,0)',
        'hi:decimal(38,0)',
        'negzero:float64',
        'whole:float64',
        'nan:float64',
        'fl:float32',
        'tsns:timestamp',
        'list:json',
        'struct:json',
        'map:json',
        'iv:text',
        'bl:binary',
        'bo:boolean',
      ],
    );
    assert.equal(
      csv,
      'ti,ub,hi,negzero,whole,nan,fl,tsns,list,struct,map,iv,bl,bo\n' +
        '1,18446744073709551615,12345678901234567890123456789012345678,-0,1,NaN,0.5,2024-02-29 13:45:00.123456,' +
        '"[1,2]","{""k"":""v"",""n"":1.5}","{""a"":1}",3 days,\\x78,t\n' +
        ',,,,,,,,,,,,,\n',
    );
  });

  it('reads a local file in place, without spooling the stream', async () => {
    const csv = canonical(TYPED_COLUMNS, TYPED_ROWS);
    const { bytes } = await encode(TYPED_COLUMNS, csv, parquet);
    const file = await saved(bytes);
    const unread = new Readable({ read() {} }); // never yields: only the path can be read
    const table = await decodeTable(
      { name: 'f.parquet', stream: unread },
      parquet,
      'test source',
      new AbortController().signal,
      {
        localPath: file,
      },
    );
    assert.equal(await text(table.stream), csv);
    assert.ok(unread.destroyed);
  });

  it('describes a file from its footer alone, for the plan task', async () => {
    const columns: TableColumn[] = [
      { name: 'n', type: 'int64', nullable: false },
      { name: 'label', type: 'text', nullable: true },
    ];
    const rows = generated(200_000, (i) => `${i},row ${i}\n`, 'n,label\n');
    const { bytes } = await encode(columns, rows.stream, parquet);
    const peeked: [number, number][] = [];
    const peek = {
      size: bytes.length,
      read: async (position: number, length: number): Promise<Buffer> => {
        peeked.push([position, length]);
        return bytes.subarray(position, position + length);
      },
    };
    const unread = new Readable({
      read() {
        this.destroy(new Error('the stream was read'));
      },
    });
    const described = await describeTable(
      { name: 'big.parquet', stream: unread, peek },
      parquet,
      'test source',
      new AbortController().signal,
    );
    const { table } = await decode('big.parquet', bytes, parquet);
    assert.deepEqual(described, table.columns);
    assert.deepEqual(
      described.map((c) => `${c.name}:${c.type}`),
      ['n:int64', 'label:text'],
    );
    // The last 8 bytes (footer length and magic), then the footer: nothing of the rows.
    const footer = bytes.readUInt32LE(bytes.length - 8);
    assert.deepEqual(peeked, [
      [bytes.length - 8, 8],
      [bytes.length - 8 - footer, footer],
    ]);
    assert.ok(footer * 20 < bytes.length, `footer ${footer} of ${bytes.length} bytes`);
    assert.ok(unread.destroyed);

    const peekOf = (b: Buffer): { size: number; read: (p: number, l: number) => Promise<Buffer> } => ({
      size: b.length,
      read: async (p, l) => b.subarray(p, p + l),
    });
    const describeBytes = (b: Buffer): Promise<TableColumn[]> =>
      describeTable(
        { name: 'data/report.parquet', stream: Readable.from([]), peek: peekOf(b) },
        parquet,
        'test source "in"',
        new AbortController().signal,
      );
    await assert.rejects(
      describeBytes(Buffer.from('id,name\n1,a\n2,b\n')),
      rejectsWith(
        'bad_request',
        /^test source "in": data\/report\.parquet: not a Parquet file \(it does not end with the Parquet magic bytes PAR1\)$/,
      ),
    );
    const lying = Buffer.from(bytes);
    lying.writeUInt32LE(bytes.length, bytes.length - 8);
    await assert.rejects(
      describeBytes(lying),
      rejectsWith(
        'bad_request',
        /data\/report\.parquet: not a Parquet file \(its footer claims \d+ bytes of a \d+-byte file\)$/,
      ),
    );
    await assert.rejects(
      describeBytes(Buffer.from('PAR1')),
      rejectsWith('bad_request', /data\/report\.parquet: not a Parquet file \(4 bytes, fewer than/),
    );
    const garbled = Buffer.from(bytes);
    garbled.fill(0x41, bytes.length - 8 - footer, bytes.length - 8);
    await assert.rejects(
      describeBytes(garbled),
      rejectsWith(
        'bad_request',
        /data\/report\.parquet: a corrupt Parquet file \(its footer cannot be read: /,
      ),
    );
    // The same file read whole fails the same way.
    await assert.rejects(
      decode('data/report.parquet', garbled, parquet),
      rejectsWith(
        'bad_request',
        /data\/report\.parquet: a corrupt Parquet file \(its footer cannot be read: /,
      ),
    );
  });

  it('refuses a file that is not Parquet, naming it', async () => {
    await assert.rejects(
      decode('data/report.parquet', 'id,name\n1,a\n', parquet),
      rejectsWith(
        'bad_request',
        /^test source "in": data\/report\.parquet: not a Parquet file \(it does not end with the Parquet magic bytes PAR1\)$/,
      ),
    );
    await assert.rejects(
      decode('empty.parquet', '', parquet),
      rejectsWith('bad_request', /empty\.parquet: /),
    );
  });
});

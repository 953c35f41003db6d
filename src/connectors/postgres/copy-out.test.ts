import assert from 'node:assert/strict';
import { text } from 'node:stream/consumers';
import { after, before, describe, it } from 'node:test';
import { Client } from 'pg';
import { isLent, releaseChunk } from '../../common/chunk-pool.ts';
import { CopyOut, CopyOutParser, pgSocket, type ParsedChunk } from './copy-out.ts';
import { SERVER } from './postgres-test-kit.ts';

function message(code: string, body: Buffer | string): Buffer {
  const b = Buffer.from(body);
  const header = Buffer.alloc(5);
  header.write(code, 0, 'latin1');
  header.writeUInt32BE(b.length + 4, 1);
  return Buffer.concat([header, b]);
}

const ROWS = ['id,note\n', '1,"a, b"\n', '2,\n', `3,${'x'.repeat(300)}\n`, '4,ü€\n'];
/** What follows the copy on the wire, which the parser must hand back untouched. */
const AFTER = Buffer.concat([message('C', 'COPY 4\0'), message('Z', 'I')]);

function wire(trailer: Buffer): Buffer {
  return Buffer.concat([
    message('H', Buffer.from([0, 0, 2, 0, 0, 0, 0])),
    message('d', ROWS[0]!),
    message('N', 'SNOTICE\0Mhello\0\0'),
    message('d', ROWS[1]!),
    message('d', ROWS[2]!),
    message('S', 'application_name\0x\0'),
    message('d', ROWS[3]!),
    message('d', ROWS[4]!),
    trailer,
  ]);
}

/** Feeds `bytes` cut at `cuts`, copying the data out at once (it is the chunk's own memory). */
function feed(bytes: Buffer, cuts: number[]): { data: string; last: ParsedChunk } {
  const parser = new CopyOutParser();
  const parts: Buffer[] = [];
  let last: ParsedChunk = { data: undefined };
  let from = 0;
  for (const to of [...cuts, bytes.length]) {
    if (to <= from) continue;
    // A fresh buffer per chunk, as a socket gives them.
    last = parser.parse(Buffer.from(bytes.subarray(from, to)));
    if (last.data) parts.push(Buffer.from(last.data));
    from = to;
    if (last.end) break;
  }
  return { data: Buffer.concat(parts).toString(), last };
}

describe('COPY out parser', () => {
  const done = wire(Buffer.concat([message('c', ''), AFTER]));

  it('keeps the rows and hands back what follows CopyDone, wherever the chunks are cut', () => {
    for (let cut = 0; cut <= done.length; cut++) {
      const { data, last } = feed(done, [cut]);
      assert.equal(data, ROWS.join(''), `cut at ${cut}`);
      assert.equal(last.end, 'done');
      // The chunk holding CopyDone is the last one read; the bytes after CopyDone in it go back.
      const afterAt = done.length - AFTER.length;
      const restEnd = cut > 0 && cut >= afterAt ? cut - afterAt : AFTER.length;
      assert.deepEqual(last.rest, AFTER.subarray(0, restEnd), `cut at ${cut}`);
    }
  });

  it('reads byte by byte and in random pieces', () => {
    const bytes = Array.from({ length: done.length }, (_, i) => i + 1);
    assert.equal(feed(done, bytes).data, ROWS.join(''));
    for (let round = 0; round < 200; round++) {
      const cuts = Array.from({ length: 1 + (round % 9) }, () => Math.floor(Math.random() * done.length));
      const { data, last } = feed(
        done,
        cuts.sort((a, b) => a - b),
      );
      assert.equal(data, ROWS.join(''), `cuts ${cuts.join(',')}`);
      assert.equal(last.end, 'done');
    }
  });

  it('stops at an ErrorResponse and hands it back whole', () => {
    const error = message('E', 'SERROR\0C22012\0Mdivision by zero\0\0');
    const bytes = wire(Buffer.concat([error, message('Z', 'I')]));
    for (let cut = 0; cut <= bytes.length; cut++) {
      const { data, last } = feed(bytes, [cut]);
      assert.equal(data, ROWS.join(''));
      assert.equal(last.end, 'error');
      assert.equal(last.rest![0], 'E'.charCodeAt(0));
    }
  });

  it('ends at a message that has no place in a copy, handing it back unread', () => {
    const { data, last } = feed(wire(AFTER), []);
    assert.equal(data, ROWS.join(''));
    assert.equal(last.end, 'done');
    assert.deepEqual(last.rest, AFTER);
  });

  it('refuses to go on once the copy is over', () => {
    const parser = new CopyOutParser();
    parser.parse(Buffer.concat([message('c', '')]));
    assert.throws(() => parser.parse(Buffer.from('d')), /already over/);
  });
});

const SOCKETS = [
  { kind: "the socket's stream (TLS connections)", config: SERVER, pooled: false },
  { kind: 'pool buffers (pgSocket)', config: { ...SERVER, stream: pgSocket }, pooled: true },
];

for (const { kind, config, pooled: pooledSocket } of SOCKETS)
  describe(`COPY out against PostgreSQL, reading ${kind}`, () => {
    let client: Client;
    before(async () => {
      client = new Client(config);
      await client.connect();
    });
    after(() => client.end());

    it('streams a large copy byte for byte, counts its rows, and leaves the connection usable', async () => {
      const copy = client.query(
        new CopyOut(
          `COPY (SELECT g, repeat(md5(g::text), 1 + g % 7), CASE WHEN g % 11 = 0 THEN NULL ELSE 'q"' || g END
           FROM generate_series(1, 200000) g) TO STDOUT WITH (FORMAT csv, HEADER true)`,
        ),
      );
      const got = await text(copy);
      const { rows } = await client.query<{ t: string }>(
        `SELECT string_agg(format('%s,%s,%s', g, repeat(md5(g::text), 1 + g % 7),
          CASE WHEN g % 11 = 0 THEN '' ELSE '"q""' || g || '"' END), E'\\n' ORDER BY g) || E'\\n' AS t
         FROM generate_series(1, 200000) g`,
      );
      assert.equal(got, `g,repeat,case\n${rows[0]!.t}`);
      assert.equal(copy.rowCount, 200000);
    });

    it('fails with the server error raised mid-copy, and the connection goes on', async () => {
      const copy = client.query(
        new CopyOut(`COPY (SELECT 1 / (50000 - g) FROM generate_series(1, 60000) g) TO STDOUT`),
      );
      await assert.rejects(text(copy), /division by zero/);
      const { rows } = await client.query<{ one: number }>('SELECT 1 AS one');
      assert.equal(rows[0]!.one, 1);
    });

    it('fails with the server error when the query is refused at once', async () => {
      const copy = client.query(new CopyOut('COPY (SELECT * FROM no_such_table_here) TO STDOUT'));
      await assert.rejects(text(copy), /relation "no_such_table_here" does not exist/);
      const { rows } = await client.query<{ one: number }>('SELECT 1 AS one');
      assert.equal(rows[0]!.one, 1);
    });

    it('keeps every byte when a slow consumer gives each chunk back as soon as it has copied it', async () => {
      const sql = `COPY (SELECT g, md5(g::text) FROM generate_series(1, 300000) g) TO STDOUT`;
      const copy = client.query(new CopyOut(sql));
      const parts: Buffer[] = [];
      let pooled = 0;
      for await (const chunk of copy as AsyncIterable<Buffer>) {
        parts.push(Buffer.from(chunk));
        if (isLent(chunk)) pooled++;
        // npm test overwrites a released buffer: a chunk still in use would change under us.
        releaseChunk(chunk);
        if (parts.length % 50 === 0) await new Promise((resolve) => setTimeout(resolve, 5));
      }
      const { rows } = await client.query<{ t: string }>(
        `SELECT string_agg(g || E'\t' || md5(g::text), E'\n' ORDER BY g) || E'\n' AS t FROM generate_series(1, 300000) g`,
      );
      assert.equal(Buffer.concat(parts).toString(), rows[0]!.t);
      assert.equal(copy.rowCount, 300000);
      if (pooledSocket) assert.ok(pooled > 0, 'the copy read into pool buffers');
    });
  });

/**
 * What only the S3 store does: listing below a prefix read as a folder (folder markers, staging
 * folders, a sibling prefix), option checks, multipart staging of a large object and an empty one,
 * and the mapping of store errors s3rver cannot produce (it does not verify signatures). Reading,
 * writing, the commit rules, cancellation and the error catalogue are checked by the conformance
 * suite (src/connectors/conformance/s3.conformance.test.ts).
 */
import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { Readable } from 'node:stream';
import { after, before, describe, it } from 'node:test';
import {
  GetObjectCommand,
  ListObjectsV2Command,
  PutObjectCommand,
  S3Client,
  type S3ClientConfig,
} from '@aws-sdk/client-s3';
import { startS3rver, type S3rverHandle } from '../../../test/helpers/s3rver.ts';
import type { FerryError } from '../../common/errors.ts';
import type { PartitionT, ResolvedEndpointT } from '../../protocol/task.ts';
import type { AttemptContext, PlanContext } from '../connector.ts';
import { s3Sink, s3Source } from './s3-connector.ts';
import { s3Error } from './s3-errors.ts';
import { PART_SIZE } from './s3-writer.ts';
import { rejectsWith } from '../../../test/helpers/rejects-with.ts';
import { directOf, startProxy } from '../../../test/helpers/direct-reads.ts';
import { heldFileChecks } from '../../../test/helpers/held-files.ts';
import { WHOLE_READ_BELOW } from '../object-store/range-pairs.ts';
import { UploadBudget } from '../../common/upload-budget.ts';

const BUCKET = 'lake';
let s3: S3rverHandle;
let client: S3Client;
const cleanups: (() => Promise<void> | void)[] = [];

before(async () => {
  s3 = await startS3rver({ after: (fn) => cleanups.push(fn) }, [BUCKET]);
  client = new S3Client(clientConfig(s3.properties(BUCKET)));
});

after(async () => {
  client.destroy();
  for (const cleanup of cleanups) await cleanup();
});

function clientConfig(p: Record<string, unknown>): S3ClientConfig {
  return {
    endpoint: p['endpoint'] as string,
    region: p['region'] as string,
    forcePathStyle: true,
    credentials: { accessKeyId: p['accessKeyId'] as string, secretAccessKey: p['secretAccessKey'] as string },
  };
}

let counter = 0;
/** A fresh prefix, so tests do not see each other's objects. */
function freshPrefix(): string {
  return `case-${++counter}`;
}

function endpoint(
  options: Record<string, unknown> = {},
  properties: Record<string, unknown> = s3.properties(BUCKET),
  linkedService = 'lake',
): ResolvedEndpointT {
  return { type: 's3', linkedService, properties, options };
}

/** This file's own upload budget: what its attempts hold and wait for is no other test file's. */
const uploadBudget = new UploadBudget();

function ctx(): PlanContext {
  return { signal: new AbortController().signal, allowedRoots: [], watermark: null };
}

function attempt(taskId: string, attemptId: string): AttemptContext {
  return {
    signal: new AbortController().signal,
    allowedRoots: [],
    uploadBudget,
    runId: 'r1',
    activity: 'copy',
    taskId,
    attemptId,
    taskIndex: 0,
  };
}

/** The partitions of a plan. */
async function plan(source: ResolvedEndpointT): Promise<PartitionT[]> {
  return (await s3Source.plan(source, ctx())).partitions;
}

async function put(key: string, body: string | Buffer): Promise<void> {
  await client.send(
    new PutObjectCommand({ Bucket: BUCKET, Key: key, Body: body, ContentLength: Buffer.byteLength(body) }),
  );
}

async function get(key: string): Promise<Buffer> {
  const res = await client.send(new GetObjectCommand({ Bucket: BUCKET, Key: key }));
  return Buffer.from(await res.Body!.transformToByteArray());
}

/** Every key below `prefix`, sorted. */
async function keys(prefix: string): Promise<string[]> {
  const res = await client.send(new ListObjectsV2Command({ Bucket: BUCKET, Prefix: `${prefix}/` }));
  return (res.Contents ?? []).map((o) => o.Key!).sort();
}

function sha256(data: Buffer | string): string {
  return createHash('sha256').update(data).digest('hex');
}

describe('s3 plan', () => {
  it('lists objects under the prefix in key order and groups them by count and bytes', async () => {
    const p = freshPrefix();
    await put(`${p}/z.txt`, 'x'.repeat(5));
    await put(`${p}/b/d.txt`, 'x'.repeat(10));
    await put(`${p}/a.txt`, 'x'.repeat(10));
    await put(`${p}/b/c.txt`, 'x'.repeat(10));
    await put(`${p}/big.bin`, 'x'.repeat(100));
    await put(`${p}/empty.txt`, '');
    await put(`${p}/folder/`, '');
    await put(`${p}/.ferry-staging/t.a/left.txt`, 'staged');
    await put(`${p}-sibling/a.txt`, 'not under the prefix');

    const partitions = await plan(endpoint({ prefix: p, filesPerTask: 2, bytesPerTask: 25 }));
    assert.deepEqual(partitions, [
      {
        kind: 'files',
        files: [
          { path: 'a.txt', size: 10 },
          { path: 'b/c.txt', size: 10 },
        ],
      },
      { kind: 'files', files: [{ path: 'b/d.txt', size: 10 }] },
      { kind: 'files', files: [{ path: 'big.bin', size: 100 }] },
      {
        kind: 'files',
        files: [
          { path: 'empty.txt', size: 0 },
          { path: 'z.txt', size: 5 },
        ],
      },
    ]);
  });

  // ListObjectsV2 pagination (more than 1000 keys) cannot be exercised here: s3rver builds its
  // continuation tokens with DES, which Node 24's OpenSSL 3 refuses, so every truncated page is a 500.
  it('filters by a glob relative to the prefix, which is read as a folder', async () => {
    const p = freshPrefix();
    const names = Array.from({ length: 30 }, (_, i) => `d/${String(i).padStart(4, '0')}.csv`);
    await Promise.all(names.map((n) => put(`${p}/${n}`, 'x')));
    await put(`${p}/d/readme.md`, 'no');
    await put(`${p}/e/0001.csv`, 'no');
    const partitions = await plan(endpoint({ prefix: `/${p}//`, glob: 'd/*.csv' }));
    assert.equal(partitions.length, 1);
    const files = partitions[0]!.kind === 'files' ? partitions[0]!.files : [];
    assert.deepEqual(
      files.map((f) => f.path),
      names,
    );
  });

  it('refuses bad options with a bad_request naming the field', async () => {
    await rejectsWith(plan(endpoint({ prefix: 'a/../b' })), 'bad_request', /'\.\.'/);
    await rejectsWith(plan(endpoint({ nope: 1 })), 'bad_request', /nope: is not a known field/);
  });
});

describe('s3 multipart staging', () => {
  it('stages a large object in several parts and an empty one with none, all invisible until commit', async () => {
    const p = freshPrefix();
    const big = randomBytes(2 * PART_SIZE + 123);
    const contents = new Map<string, Buffer>([
      ['big.bin', big],
      ['empty.bin', Buffer.alloc(0)],
      ['nested/small.txt', Buffer.from('hello s3\n')],
    ]);
    const writer = await s3Sink.open(endpoint({ prefix: p }), attempt('t1', 'a1'));
    for (const [name, body] of contents) {
      const staged = await writer.stage({ name, stream: Readable.from(body.length > 0 ? [body] : []) });
      assert.deepEqual(staged, { name, bytes: body.length, sha256: sha256(body) });
    }
    assert.deepEqual(await keys(p), []);
    await writer.commit();
    assert.deepEqual(await keys(p), [`${p}/big.bin`, `${p}/empty.bin`, `${p}/nested/small.txt`]);
    for (const [name, body] of contents) assert.equal(sha256(await get(`${p}/${name}`)), sha256(body), name);
  });
});

describe('s3 streamed staging through the part pool', () => {
  it('stages many streamed objects at once, and a failed stream gives its part buffers back', async () => {
    const p = freshPrefix();
    const sink = endpoint({ prefix: p });
    const data = randomBytes(3 * PART_SIZE + 17);
    /** `data` in odd-sized chunks, failing after `failAt` bytes. */
    const chunks = (failAt = Infinity): Readable =>
      Readable.from(
        (function* () {
          for (let at = 0; at < data.length; at += 700_001) {
            if (at > failAt) throw new Error('source broke');
            yield data.subarray(at, at + 700_001);
          }
        })(),
      );
    const broken = await s3Sink.open(sink, attempt('t0', 'a0'));
    await rejectsWith(
      broken.stage({ name: 'broken.bin', stream: chunks(2 * PART_SIZE) }),
      'store_error',
      /source broke/,
    );
    await broken.abort();
    // Eight objects of four parts each, at once, through a pool of six part buffers.
    await Promise.all(
      Array.from({ length: 8 }, async (_, i) => {
        const w = await s3Sink.open(sink, attempt(`t${i + 1}`, `a${i + 1}`));
        const staged = await w.stage({ name: `ok${i}.bin`, stream: chunks() });
        assert.equal(staged.sha256, sha256(data));
        await w.commit();
      }),
    );
    assert.deepEqual(await keys(p), Array.from({ length: 8 }, (_, i) => `${p}/ok${i}.bin`).sort());
    for (let i = 0; i < 8; i++) assert.ok((await get(`${p}/ok${i}.bin`)).equals(data));
  });
});

describe('s3 direct staging', () => {
  it('stages files read directly: whole when small, parts sent from their ranges when large', async () => {
    const p = freshPrefix();
    const cases: [string, Buffer][] = [
      ['big.bin', randomBytes(2 * PART_SIZE + 5)],
      ['one-part.bin', randomBytes(PART_SIZE)],
      ['whole-limit.bin', randomBytes(WHOLE_READ_BELOW)],
      ['under-whole-limit.bin', randomBytes(WHOLE_READ_BELOW - 1)],
      ['empty.bin', Buffer.alloc(0)],
    ];
    const writer = await s3Sink.open(endpoint({ prefix: p }), attempt('t1', 'a1'));
    for (const [name, data] of cases) {
      const direct = directOf(data, data.length);
      assert.deepEqual(await writer.stageDirect!(name, direct), {
        name,
        bytes: data.length,
        sha256: sha256(data),
      });
      // Every byte read once and counted once; a large file is read again, uncounted, for its hash.
      assert.equal(direct.counted.read, data.length, name);
      assert.equal(direct.counted.reread, data.length >= WHOLE_READ_BELOW ? data.length : 0, name);
    }
    assert.deepEqual(await keys(p), []);
    await writer.commit();
    assert.deepEqual(await keys(p), cases.map(([name]) => `${p}/${name}`).sort());
    for (const [name, data] of cases) assert.ok((await get(`${p}/${name}`)).equals(data), name);
  });

  it('fails a direct stage when the file changed or a read failed, publishing nothing', async () => {
    const p = freshPrefix();
    const sink = endpoint({ prefix: p });
    const data = randomBytes(2 * PART_SIZE + 5);
    const writer = await s3Sink.open(sink, attempt('t1', 'a1'));
    for (const [name, size] of [
      ['grew.bin', PART_SIZE],
      ['shrank.bin', 3 * PART_SIZE],
      ['grew-small.bin', 100],
    ] as const) {
      const err = await rejectsWith(
        writer.stageDirect!(name, directOf(data, size)),
        'store_error',
        /changed while it was read/,
      );
      assert.equal(err.retryable, true, name);
    }
    for (const [name, fail] of [
      ['read.bin', { at: PART_SIZE + 100, in: 'read' }],
      ['reread.bin', { at: PART_SIZE, in: 'reread' }],
    ] as const) {
      await rejectsWith(
        writer.stageDirect!(name, directOf(data, data.length, fail)),
        'store_error',
        /disk on fire/,
      );
    }
    await writer.commit();
    assert.deepEqual(await keys(p), []);
    // Every pooled buffer came back: six files of three parts each still go through at once.
    await Promise.all(
      Array.from({ length: 6 }, async (_, i) => {
        const w = await s3Sink.open(sink, attempt(`t${i + 2}`, `a${i + 2}`));
        await w.stageDirect!(`ok${i}.bin`, directOf(data, data.length));
        await w.commit();
      }),
    );
    assert.equal((await keys(p)).length, 6);
    for (let i = 0; i < 6; i++) assert.ok((await get(`${p}/ok${i}.bin`)).equals(data));
  });

  it('sends a part again, reread, when its connection is cut mid-request', async () => {
    // Of the first three connections, those that carry over 1 MiB (parts, not the upload's creation).
    const proxy = await startProxy(s3.port, { cut: 3, after: 1024 * 1024 });
    const p = freshPrefix();
    const properties = { ...s3.properties(BUCKET), endpoint: `http://127.0.0.1:${proxy.port}` };
    const writer = await s3Sink.open(endpoint({ prefix: p }, properties), attempt('t1', 'a1'));
    const data = randomBytes(3 * PART_SIZE + 11);
    const direct = directOf(data, data.length);
    const staged = await writer.stageDirect!('cut.bin', direct);
    await writer.commit();
    assert.ok(proxy.cuts >= 1, 'connections were cut');
    assert.equal(staged.sha256, sha256(data));
    assert.ok((await get(`${p}/cut.bin`)).equals(data));
    assert.equal(direct.counted.read, data.length);
    assert.ok(direct.counted.reread > data.length, `reread ${direct.counted.reread}`);
  });
});

// s3rver checks the access key id but not V4 signatures, so it never answers SignatureDoesNotMatch,
// nor throttles or fails: the mapping of what it cannot produce is checked on s3Error directly.
describe('s3 small files put whole at commit', () => {
  heldFileChecks(async () => {
    const p = freshPrefix();
    return {
      open: (taskId, attemptId) => s3Sink.open(endpoint({ prefix: p }), attempt(taskId, attemptId)),
      names: async () => (await keys(p)).map((key) => key.slice(p.length + 1)),
      content: (name) => get(`${p}/${name}`),
      // s3rver's ETags do not tell a PutObject from a multipart upload: the kept files say it.
      inspect: async () => {},
    };
  });
});

describe('s3 error mapping', () => {
  const serviceError = (name: string, status: number): Error =>
    Object.assign(new Error(`${name} from the store`), { name, $metadata: { httpStatusCode: status } });
  const cases: [Error, FerryError['code'], boolean][] = [
    [serviceError('SignatureDoesNotMatch', 403), 'store_auth', false],
    [serviceError('AccessDenied', 403), 'store_auth', false],
    [serviceError('Forbidden', 403), 'store_auth', false],
    [serviceError('NoSuchKey', 404), 'store_object_missing', false],
    [serviceError('SlowDown', 503), 'store_error', true],
    [serviceError('InternalError', 500), 'store_error', true],
    [serviceError('InvalidArgument', 400), 'store_error', false],
    [Object.assign(new Error('connect ECONNRESET'), { code: 'ECONNRESET' }), 'store_unreachable', true],
    [Object.assign(new Error('aborted'), { name: 'AbortError' }), 'cancelled', false],
  ];
  for (const [err, code, retryable] of cases) {
    it(`${err.name} ${(err as { code?: string }).code ?? ''} -> ${code}${retryable ? ' (retryable)' : ''}`, () => {
      const mapped = s3Error(err, 'lake', { bucket: 'b', key: 'k' }, 'read');
      assert.equal(mapped.code, code, mapped.message);
      assert.equal(mapped.retryable, retryable);
      assert.match(mapped.message, /^s3 "lake": .*\(read\)$/);
    });
  }
});

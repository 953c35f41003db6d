import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { once } from 'node:events';
import { createServer } from 'node:net';
import { PassThrough, Readable } from 'node:stream';
import { after, before, describe, it } from 'node:test';
import {
  GetObjectCommand,
  ListObjectsV2Command,
  PutObjectCommand,
  S3Client,
  type S3ClientConfig,
} from '@aws-sdk/client-s3';
import { startS3rver, type S3rverHandle } from '../../../test/helpers/s3rver.ts';
import { FerryError } from '../../common/errors.ts';
import type { ResolvedEndpointT } from '../../protocol/task.ts';
import type { AttemptContext, ConnectorContext, SourceObject, StagedObject } from '../connector.ts';
import { s3Sink, s3Source } from './s3-connector.ts';
import { s3Error } from './s3-errors.ts';

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

function ctx(signal = new AbortController().signal): ConnectorContext {
  return { signal, allowedRoots: [] };
}

function attempt(taskId: string, attemptId: string, signal = new AbortController().signal): AttemptContext {
  return { ...ctx(signal), taskId, attemptId, taskIndex: 0 };
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

async function rejectsWith(
  promise: Promise<unknown>,
  code: FerryError['code'],
  message?: RegExp,
): Promise<FerryError> {
  try {
    await promise;
  } catch (err) {
    assert.ok(err instanceof FerryError, `expected a FerryError, got ${String(err)}`);
    assert.equal(err.code, code, err.message);
    if (message) assert.match(err.message, message);
    return err;
  }
  assert.fail(`expected ${code}`);
}

async function collect(objects: AsyncIterable<SourceObject>): Promise<SourceObject[]> {
  const all: SourceObject[] = [];
  for await (const o of objects) all.push(o);
  return all;
}

/** Plans, reads and stages every partition into one attempt, then commits it. */
async function copyAll(
  source: ResolvedEndpointT,
  sink: ResolvedEndpointT,
  taskId = 't1',
  attemptId = 'a1',
): Promise<StagedObject[]> {
  const partitions = await s3Source.plan(source, ctx());
  const writer = await s3Sink.open(sink, attempt(taskId, attemptId));
  const staged: StagedObject[] = [];
  for (const partition of partitions) {
    for await (const object of s3Source.read(source, partition, attempt(taskId, attemptId))) {
      staged.push(await writer.stage(object.name, object.stream));
      assert.equal(object.rows(), undefined);
    }
  }
  await writer.commit();
  return staged;
}

async function freePort(): Promise<number> {
  const server = createServer();
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  const address = server.address();
  assert.ok(address !== null && typeof address === 'object');
  server.close();
  await once(server, 'close');
  return address.port;
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

    const partitions = await s3Source.plan(endpoint({ prefix: p, filesPerTask: 2, bytesPerTask: 25 }), ctx());
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
    const partitions = await s3Source.plan(endpoint({ prefix: `/${p}//`, glob: 'd/*.csv' }), ctx());
    assert.equal(partitions.length, 1);
    const files = partitions[0]!.kind === 'files' ? partitions[0]!.files : [];
    assert.deepEqual(
      files.map((f) => f.path),
      names,
    );
  });

  it('a missing bucket is store_object_missing naming it', async () => {
    await rejectsWith(
      s3Source.plan(endpoint({}, s3.properties('nope')), ctx()),
      'store_object_missing',
      /^s3 "lake": bucket "nope" does not exist \(plan\)$/,
    );
  });

  // s3rver checks the access key id but not V4 signatures, so a wrong secret with the right key id
  // passes there; the mapping of SignatureDoesNotMatch is checked on s3Error directly below.
  it('unknown credentials are store_auth, not retryable, and the secret is not in the message', async () => {
    const wrong = { ...s3.properties(BUCKET), accessKeyId: 'NOBODY', secretAccessKey: 'wrong-secret-value' };
    const err = await rejectsWith(
      s3Source.plan(endpoint({}, wrong), ctx()),
      'store_auth',
      /InvalidAccessKeyId/,
    );
    assert.equal(err.retryable, false);
    assert.equal(err.message.includes('wrong-secret-value'), false);
  });

  it('an unreachable store is store_unreachable and retryable', async () => {
    const port = await freePort();
    const props = { ...s3.properties(BUCKET), endpoint: `http://127.0.0.1:${port}` };
    const err = await rejectsWith(
      s3Source.plan(endpoint({}, props), ctx()),
      'store_unreachable',
      /connection refused \(plan\)/,
    );
    assert.equal(err.retryable, true);
  });

  it('refuses bad options with a bad_request naming the field', async () => {
    await rejectsWith(s3Source.plan(endpoint({ prefix: 'a/../b' }), ctx()), 'bad_request', /'\.\.'/);
    await rejectsWith(
      s3Source.plan(endpoint({ nope: 1 }), ctx()),
      'bad_request',
      /nope: is not a known field/,
    );
  });
});

describe('s3 copy', () => {
  it('copies bytes identically, a 20 MiB object in several parts and an empty one included', async () => {
    const from = freshPrefix();
    const to = freshPrefix();
    const big = randomBytes(20 * 1024 * 1024 + 123);
    const contents = new Map<string, Buffer>([
      ['big.bin', big],
      ['empty.bin', Buffer.alloc(0)],
      ['nested/deeper/small.txt', Buffer.from('hello s3\n')],
    ]);
    for (const [name, body] of contents) await put(`${from}/${name}`, body);

    const staged = await copyAll(endpoint({ prefix: from, filesPerTask: 2 }), endpoint({ prefix: to }));
    assert.deepEqual(
      staged.map((s) => s.name),
      ['big.bin', 'empty.bin', 'nested/deeper/small.txt'],
    );
    assert.deepEqual(await keys(to), [`${to}/big.bin`, `${to}/empty.bin`, `${to}/nested/deeper/small.txt`]);
    for (const s of staged) {
      const expected = contents.get(s.name)!;
      assert.equal(s.bytes, expected.length);
      assert.equal(s.sha256, sha256(expected));
      assert.equal(sha256(await get(`${to}/${s.name}`)), sha256(expected), s.name);
    }
  });

  it('reading an object deleted since the plan is store_object_missing naming it', async () => {
    const p = freshPrefix();
    const objects = s3Source.read(
      endpoint({ prefix: p }),
      { kind: 'files', files: [{ path: 'gone.txt', size: 1 }] },
      attempt('t', 'a'),
    );
    await rejectsWith(
      collect(objects),
      'store_object_missing',
      /object "case-\d+\/gone.txt" in bucket "lake"/,
    );
  });
});

describe('s3 sink commit rules', () => {
  it('nothing is visible before commit', async () => {
    const p = freshPrefix();
    const writer = await s3Sink.open(endpoint({ prefix: p }), attempt('t1', 'a1'));
    await writer.stage('a.txt', Readable.from([Buffer.from('one')]));
    await writer.stage('b/c.bin', Readable.from([randomBytes(9 * 1024 * 1024)]));
    await writer.stage('empty.txt', Readable.from([]));
    assert.deepEqual(await keys(p), []);
    await writer.commit();
    assert.deepEqual(await keys(p), [`${p}/a.txt`, `${p}/b/c.bin`, `${p}/empty.txt`]);
    // commit twice is a no-op; abort after commit changes nothing.
    await writer.commit();
    await writer.abort();
    assert.deepEqual(await keys(p), [`${p}/a.txt`, `${p}/b/c.bin`, `${p}/empty.txt`]);
  });

  it("a second attempt's commit replaces the first attempt's output", async () => {
    const p = freshPrefix();
    const first = await s3Sink.open(endpoint({ prefix: p }), attempt('t1', 'a1'));
    await first.stage('out.txt', Readable.from([Buffer.from('first attempt')]));
    await first.commit();
    const second = await s3Sink.open(endpoint({ prefix: p }), attempt('t1', 'a2'));
    await second.stage('out.txt', Readable.from([Buffer.from('second')]));
    assert.equal((await get(`${p}/out.txt`)).toString(), 'first attempt');
    await second.commit();
    assert.deepEqual(await keys(p), [`${p}/out.txt`]);
    assert.equal((await get(`${p}/out.txt`)).toString(), 'second');
  });

  it('abort leaves nothing visible, is safe twice, and refuses later stages and commits', async () => {
    const p = freshPrefix();
    const writer = await s3Sink.open(endpoint({ prefix: p }), attempt('t1', 'a1'));
    await writer.stage('a.txt', Readable.from([Buffer.from('staged then aborted')]));
    await writer.stage('empty.txt', Readable.from([]));
    await writer.abort();
    await writer.abort();
    assert.deepEqual(await keys(p), []);
    await rejectsWith(writer.stage('b.txt', Readable.from([Buffer.from('x')])), 'conflict');
    await rejectsWith(writer.commit(), 'conflict');
    assert.deepEqual(await keys(p), []);
  });

  it('refuses object names that escape the prefix', async () => {
    const writer = await s3Sink.open(endpoint({ prefix: freshPrefix() }), attempt('t1', 'a1'));
    await rejectsWith(writer.stage('../x', Readable.from([])), 'forbidden');
    await rejectsWith(writer.stage('/abs', Readable.from([])), 'forbidden');
    await rejectsWith(writer.stage('a/.ferry-staging/x', Readable.from([])), 'forbidden');
    await writer.abort();
  });

  it('unknown credentials fail the stage with store_auth', async () => {
    const wrong = { ...s3.properties(BUCKET), accessKeyId: 'NOBODY', secretAccessKey: 'wrong-secret-value' };
    const writer = await s3Sink.open(endpoint({ prefix: freshPrefix() }, wrong), attempt('t1', 'a1'));
    const err = await rejectsWith(writer.stage('a.txt', Readable.from([Buffer.from('x')])), 'store_auth');
    assert.equal(err.message.includes('wrong-secret-value'), false);
    await writer.abort();
  });

  it('cancelling the signal stops a stage promptly and publishes nothing', async () => {
    const p = freshPrefix();
    const controller = new AbortController();
    const writer = await s3Sink.open(endpoint({ prefix: p }), attempt('t1', 'a1', controller.signal));
    // A source that sends one part's worth and then never ends.
    const source = new PassThrough();
    source.write(randomBytes(9 * 1024 * 1024));
    const staging = writer.stage('slow.bin', source);
    // Cancel once the first part has gone out: the gate is the source having been read past it.
    while (source.readableLength > 0) await new Promise((r) => setImmediate(r));
    controller.abort();
    await rejectsWith(staging, 'cancelled');
    assert.equal(source.destroyed, true);
    await writer.abort();
    assert.deepEqual(await keys(p), []);
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

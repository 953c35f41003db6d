/**
 * What only the Azure Blob store does: listing below a prefix, block staging (several 16 MiB blocks,
 * an empty blob from an empty list, the first of two racing attempts winning), and the credential
 * forms of a linked service. Reading, writing, the commit rules, cancellation and the error
 * catalogue are checked by the conformance suite (src/connectors/conformance/azure-blob.conformance.test.ts).
 */
import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { mkdtemp, realpath, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { after, before, describe, it } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { BlobServiceClient, type ContainerClient } from '@azure/storage-blob';
import {
  DEV_ACCOUNT,
  DEV_KEY,
  connectionStringFor,
  startAzurite,
  type Azurite,
} from '../../../test/helpers/azurite.ts';
import { executeTask } from '../../node/task-executor.ts';
import type { PartitionT, ResolvedEndpointT, TaskSpecT } from '../../protocol/task.ts';
import type { AttemptContext, PlanContext } from '../connector.ts';
import { azureBlobSink, azureBlobSource } from './azure-blob-connector.ts';
import { ATTEMPT_METADATA, BLOCK_SIZE, STREAM_BLOCK_SIZE } from './azure-blob-writer.ts';
import { HELD_FILES_MAX, UploadBudget } from '../../common/upload-budget.ts';
import { WHOLE_READ_BELOW } from '../object-store/range-pairs.ts';
import { rejectsWith } from '../../../test/helpers/rejects-with.ts';
import { directOf, startProxy, type TestDirect } from '../../../test/helpers/direct-reads.ts';
import { heldFileChecks, keepable } from '../../../test/helpers/held-files.ts';

let azurite: Azurite;
let service: BlobServiceClient;

before(async () => {
  azurite = await startAzurite();
  service = BlobServiceClient.fromConnectionString(azurite.connectionString());
});

after(async () => {
  await azurite.stop();
});

let counter = 0;
/** A fresh container, so tests do not see each other's blobs. */
async function freshContainer(): Promise<ContainerClient> {
  const container = service.getContainerClient(`case-${process.pid}-${++counter}`);
  await container.create();
  return container;
}

function endpoint(
  container: string,
  options: Record<string, unknown> = {},
  linkedService = 'lake',
  properties: Record<string, unknown> = { connectionString: azurite.connectionString() },
): ResolvedEndpointT {
  return { type: 'azure-blob', linkedService, properties: { ...properties, container }, options };
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
  return (await azureBlobSource.plan(source, ctx())).partitions;
}

function bytes(data: string | Buffer): { stream: Readable } {
  return { stream: Readable.from([typeof data === 'string' ? Buffer.from(data) : data]) };
}

async function put(container: ContainerClient, name: string, content: string | Buffer): Promise<void> {
  const data = typeof content === 'string' ? Buffer.from(content) : content;
  await container.getBlockBlobClient(name).upload(data, data.length);
}

async function names(container: ContainerClient): Promise<string[]> {
  const all: string[] = [];
  for await (const b of container.listBlobsFlat()) all.push(b.name);
  return all.sort();
}

async function content(container: ContainerClient, name: string): Promise<Buffer> {
  return container.getBlobClient(name).downloadToBuffer();
}

describe('azure-blob plan', () => {
  it('lists blobs below the prefix in name order and groups them by count and bytes', async () => {
    const c = await freshContainer();
    await put(c, 'in/z.txt', 'x'.repeat(5));
    await put(c, 'in/b/d.txt', 'x'.repeat(10));
    await put(c, 'in/a.txt', 'x'.repeat(10));
    await put(c, 'in/b/c.txt', 'x'.repeat(10));
    await put(c, 'in/big.bin', 'x'.repeat(100));
    await put(c, 'in/empty.txt', '');
    await put(c, 'in/.ferry-staging/t.a/left.txt', 'staged');
    await put(c, 'inside.txt', 'not below the prefix');
    await put(c, 'other/a.txt', 'elsewhere');

    const partitions = await plan(
      endpoint(c.containerName, { prefix: '/in/', filesPerTask: 2, bytesPerTask: 25 }),
    );
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

  it('filters with a glob relative to the prefix, and plans the whole container without one', async () => {
    const c = await freshContainer();
    await put(c, 'in/a.csv', '1');
    await put(c, 'in/a.txt', '1');
    await put(c, 'in/deep/b.csv', '1');
    await put(c, 'other/c.csv', '1');
    const csv = await plan(endpoint(c.containerName, { prefix: 'in', glob: '**/*.csv' }));
    assert.deepEqual(csv, [
      {
        kind: 'files',
        files: [
          { path: 'a.csv', size: 1 },
          { path: 'deep/b.csv', size: 1 },
        ],
      },
    ]);
    const all = await plan(endpoint(c.containerName));
    assert.deepEqual(
      all.flatMap((p) => (p.kind === 'files' ? p.files.map((f) => f.path) : [])),
      ['in/a.csv', 'in/a.txt', 'in/deep/b.csv', 'other/c.csv'],
    );
    assert.deepEqual(await plan(endpoint(c.containerName, { prefix: 'none' })), []);
  });

  it('refuses a prefix that climbs', async () => {
    await rejectsWith(plan(endpoint('any', { prefix: 'a/../b' })), 'bad_request', /'\.\.'/);
  });
});

describe('azure-blob block staging', () => {
  it('stages a stream in 8 MiB blocks, and publishes an empty one as an empty blob', async () => {
    const dst = await freshContainer();
    const big = randomBytes(2 * STREAM_BLOCK_SIZE + 4 * 1024 * 1024 + 17);
    const writer = await azureBlobSink.open(
      endpoint(dst.containerName, { prefix: 'out' }, 'out'),
      attempt('t1', 'a1'),
    );
    await writer.stage({ name: 'big.bin', ...bytes(big) });
    await writer.stage({ name: 'empty', stream: Readable.from([]) });
    const blocks = [STREAM_BLOCK_SIZE, STREAM_BLOCK_SIZE, 4 * 1024 * 1024 + 17];
    // Uncommitted blocks come back in no particular order.
    const staged = await dst.getBlockBlobClient('out/big.bin').getBlockList('uncommitted');
    assert.deepEqual(
      staged.uncommittedBlocks?.map((b) => b.size).sort((a, b) => b - a),
      blocks,
    );
    assert.deepEqual(await names(dst), []);
    await writer.commit();
    assert.deepEqual(await names(dst), ['out/big.bin', 'out/empty']);
    assert.ok((await content(dst, 'out/big.bin')).equals(big));
    const committed = await dst.getBlockBlobClient('out/big.bin').getBlockList('committed');
    assert.deepEqual(
      committed.committedBlocks?.map((b) => b.size),
      blocks,
      'two blocks and a bit go up as three blocks, in order',
    );
    assert.equal((await content(dst, 'out/empty')).length, 0);
  });

  it('fills blocks from a stream of odd-sized chunks, small objects held whole', async () => {
    const dst = await freshContainer();
    const writer = await azureBlobSink.open(endpoint(dst.containerName, {}, 'out'), attempt('t1', 'a1'));
    const data = randomBytes(2 * STREAM_BLOCK_SIZE + 1024 * 1024 + 3);
    const pieces = (buf: Buffer, size: number): Buffer[] =>
      Array.from({ length: Math.ceil(buf.length / size) }, (_, i) => buf.subarray(i * size, (i + 1) * size));
    await writer.stage({ name: 'big.bin', stream: Readable.from(pieces(data, 700_001)) });
    const small = randomBytes(900_000);
    await writer.stage({ name: 'small.bin', stream: Readable.from(pieces(small, 65_536)) });
    await writer.commit();
    assert.ok((await content(dst, 'big.bin')).equals(data));
    assert.ok((await content(dst, 'small.bin')).equals(small));
    const blocks = await dst.getBlockBlobClient('big.bin').getBlockList('committed');
    assert.deepEqual(
      blocks.committedBlocks?.map((b) => b.size),
      [STREAM_BLOCK_SIZE, STREAM_BLOCK_SIZE, 1024 * 1024 + 3],
    );
    const one = await dst.getBlockBlobClient('small.bin').getBlockList('committed');
    assert.deepEqual(
      one.committedBlocks?.map((b) => b.size),
      [900_000],
      'a small object is one block',
    );
  });

  it('shares the node block buffers among uploads: five at once, each intact', async () => {
    // 5 x 4 full blocks want 20 buffers at once; the node has 4, so uploads wait for each other's.
    const dst = await freshContainer();
    const datas = Array.from({ length: 5 }, () => randomBytes(4 * STREAM_BLOCK_SIZE + 3));
    await Promise.all(
      datas.map(async (data, i) => {
        const writer = await azureBlobSink.open(
          endpoint(dst.containerName, {}, 'out'),
          attempt(`t${i}`, `a${i}`),
        );
        await writer.stage({ name: `f${i}.bin`, ...bytes(data) });
        await writer.commit();
      }),
    );
    for (const [i, data] of datas.entries()) {
      assert.ok((await content(dst, `f${i}.bin`)).equals(data), `f${i}.bin is what was sent`);
    }
  });

  it('stages files read directly: whole when small, from ranges sent at once when large', async () => {
    const dst = await freshContainer();
    const writer = await azureBlobSink.open(endpoint(dst.containerName, {}, 'out'), attempt('t1', 'a1'));
    const cases: [string, Buffer][] = [
      ['big.bin', randomBytes(2 * BLOCK_SIZE + 5)],
      ['one-block.bin', randomBytes(BLOCK_SIZE)],
      ['mid.bin', randomBytes(3 * 1024 * 1024 + 7)],
      ['whole-limit.bin', randomBytes(WHOLE_READ_BELOW)],
      ['under-whole-limit.bin', randomBytes(WHOLE_READ_BELOW - 1)],
      ['small.bin', randomBytes(3000)],
      ['empty.bin', Buffer.alloc(0)],
    ];
    for (const [name, data] of cases) {
      const direct = directOf(data, data.length);
      const staged = await writer.stageDirect!(name, direct);
      assert.equal(staged.bytes, data.length, name);
      assert.equal(staged.sha256, createHash('sha256').update(data).digest('hex'), name);
      // Every byte read once and counted once; a large file is read a second time, uncounted, for
      // its hash.
      assert.equal(direct.counted.read, data.length, name);
      assert.equal(direct.counted.reread, data.length >= WHOLE_READ_BELOW ? data.length : 0, name);
    }
    assert.deepEqual(await names(dst), []);
    await writer.commit();
    for (const [name, data] of cases) {
      assert.ok((await content(dst, name)).equals(data), `${name} is what was read`);
    }
    const blocks = await dst.getBlockBlobClient('big.bin').getBlockList('committed');
    assert.deepEqual(
      blocks.committedBlocks?.map((b) => b.size),
      [BLOCK_SIZE, BLOCK_SIZE, 5],
    );
  });

  it('fails a direct stage of a file that grew or shrank while it was read, publishing nothing', async () => {
    const dst = await freshContainer();
    const writer = await azureBlobSink.open(endpoint(dst.containerName, {}, 'out'), attempt('t1', 'a1'));
    const big = randomBytes(BLOCK_SIZE + 5);
    const small = randomBytes(3000);
    const cases: [string, Buffer, number][] = [
      ['grew-small.bin', small, 100],
      ['shrank-small.bin', small, 5000],
      ['grew-big.bin', big, BLOCK_SIZE],
      ['shrank-big.bin', big, BLOCK_SIZE + 100],
      ['grew-small-to-big.bin', big, 3000],
    ];
    for (const [name, data, size] of cases) {
      const err = await rejectsWith(
        writer.stageDirect!(name, directOf(data, size)),
        'store_error',
        /changed while it was read/,
      );
      assert.equal(err.retryable, true, name);
    }
    await writer.commit();
    assert.deepEqual(await names(dst), []);
  });

  it('fails a direct stage when a read or its hash pass fails, publishing nothing and keeping no buffer', async () => {
    const dst = await freshContainer();
    const sink = endpoint(dst.containerName, {}, 'out');
    const data = randomBytes(3 * BLOCK_SIZE);
    for (const [name, fail] of [
      ['read.bin', { at: 2 * BLOCK_SIZE + 100, in: 'read' }],
      ['reread.bin', { at: BLOCK_SIZE, in: 'reread' }],
      ['small.bin', { at: 100, in: 'read' }],
    ] as const) {
      const writer = await azureBlobSink.open(sink, attempt('t1', `a-${name}`));
      const file = name === 'small.bin' ? data.subarray(0, 5000) : data;
      await rejectsWith(
        writer.stageDirect!(name, directOf(file, file.length, fail)),
        'store_error',
        /disk on fire/,
      );
      await writer.abort();
    }
    assert.deepEqual(await names(dst), []);
    // Every pooled buffer came back: six objects of three blocks each still go through at once.
    await Promise.all(
      Array.from({ length: 6 }, async (_, i) => {
        const w = await azureBlobSink.open(sink, attempt(`t${i + 2}`, `a${i + 2}`));
        await w.stageDirect!(`ok${i}.bin`, directOf(data, data.length));
        await w.commit();
      }),
    );
    assert.equal((await names(dst)).length, 6);
    for (let i = 0; i < 6; i++) assert.ok((await content(dst, `ok${i}.bin`)).equals(data));
  });

  it('sends a block again, reread, when its connection is cut mid-request', async () => {
    // The first connections are cut once they have carried 1 MiB upwards: the SDK tries those
    // requests again, each with a new body over the same range.
    const proxy = await startProxy(azurite.port, { cut: 3, after: 1024 * 1024 });
    const dst = await freshContainer();
    const viaProxy = {
      connectionString: connectionStringFor(`http://127.0.0.1:${proxy.port}/${DEV_ACCOUNT}`),
    };
    const writer = await azureBlobSink.open(
      endpoint(dst.containerName, {}, 'out', viaProxy),
      attempt('t1', 'a1'),
    );
    const data = randomBytes(3 * BLOCK_SIZE + 11);
    const direct = directOf(data, data.length);
    const staged = await writer.stageDirect!('cut.bin', direct);
    await writer.commit();
    assert.equal(proxy.cuts, 3, 'connections were cut');
    assert.equal(staged.sha256, createHash('sha256').update(data).digest('hex'));
    assert.ok((await content(dst, 'cut.bin')).equals(data));
    // Read and counted once; what the cut requests had sent was read again, uncounted.
    assert.equal(direct.counted.read, data.length);
    assert.ok(direct.counted.reread > data.length, `reread ${direct.counted.reread}`);
  });

  it('takes files from the filesystem source by direct reads in a copy task, metered and paced', async () => {
    const dst = await freshContainer();
    const dir = await realpath(await mkdtemp(join(tmpdir(), 'ferry-direct-')));
    after(() => rm(dir, { recursive: true, force: true }));
    const files = { 'a.bin': randomBytes(9 * 1024 * 1024 + 1), 'b.bin': randomBytes(700_000) };
    for (const [name, data] of Object.entries(files)) await writeFile(join(dir, name), data);
    const rate = 8 * 1024 * 1024;
    const progress: number[] = [];
    const spec: TaskSpecT = {
      runId: 'r1',
      activity: 'copy',
      source: { type: 'filesystem', linkedService: 'in', properties: { root: dir }, options: {} },
      sink: endpoint(dst.containerName, {}, 'out'),
      maxBytesPerSecond: rate,
      work: {
        kind: 'copy',
        index: 0,
        partition: { kind: 'files', files: Object.keys(files).map((path) => ({ path, size: 0 })) },
      },
    };
    const started = Date.now();
    const result = await executeTask(
      { attemptId: 'a1', taskId: 't1', spec },
      { signal: new AbortController().signal, allowedRoots: [dir], uploadBudget: new UploadBudget() },
      { onProgress: (_rows, bytes) => progress.push(bytes), beforeCommit: async () => {} },
    );
    const elapsed = Date.now() - started;
    assert.equal(result.kind, 'copy');
    const total = files['a.bin'].length + files['b.bin'].length;
    assert.equal(result.bytesRead, total);
    assert.equal(result.bytesWritten, total);
    assert.deepEqual(
      result.outputs.map((o) => [o.name, o.bytes, o.sha256]),
      Object.entries(files).map(([name, data]) => [
        name,
        data.length,
        createHash('sha256').update(data).digest('hex'),
      ]),
    );
    for (const [name, data] of Object.entries(files)) assert.ok((await content(dst, name)).equals(data));
    // Progress came read by read, never backwards, up to every byte.
    assert.ok(progress.length > 3);
    assert.deepEqual(
      progress,
      [...progress].sort((a, b) => a - b),
    );
    assert.equal(progress.at(-1), total);
    // Held to the rate: a throttle can only make the copy slower than the bytes allow.
    assert.ok(elapsed >= (total / rate) * 1000 * 0.9, `took ${elapsed} ms`);
  });

  it('refuses the commit of an attempt that began before a commit made since, even if it staged after it', async () => {
    const dst = await freshContainer();
    const sink = endpoint(dst.containerName, {}, 'out');
    const opened = Date.now();
    const stale = await azureBlobSink.open(sink, attempt('t1', 'a1'));
    const fresh = await azureBlobSink.open(sink, attempt('t1', 'a2'));
    await sleep(Math.max(0, (Math.floor(opened / 1000) + 2) * 1000 - Date.now()));
    await fresh.stage({ name: 'part.txt', ...bytes('fresh') });
    await fresh.commit();
    await stale.stage({ name: 'part.txt', ...bytes('stale') });
    await rejectsWith(
      stale.commit(),
      'conflict',
      /changed after this attempt began: another attempt committed the blob first \(commit\)$/,
    );
    assert.equal((await content(dst, 'part.txt')).toString(), 'fresh');
    const { metadata } = await dst.getBlockBlobClient('part.txt').getProperties();
    assert.equal(metadata?.[ATTEMPT_METADATA], 'a2', 'the blob names the attempt that wrote it');
  });

  it('of two attempts staging at once, the first to commit wins and the other gets a conflict', async () => {
    const dst = await freshContainer();
    const sink = endpoint(dst.containerName, {}, 'out');
    const stale = await azureBlobSink.open(sink, attempt('t1', 'a1'));
    const fresh = await azureBlobSink.open(sink, attempt('t1', 'a2'));
    await stale.stage({ name: 'part.txt', ...bytes('stale') });
    await fresh.stage({ name: 'part.txt', ...bytes('fresh') });
    await fresh.commit();
    await rejectsWith(stale.commit(), 'conflict', /another attempt committed the blob first \(commit\)$/);
    assert.equal((await content(dst, 'part.txt')).toString(), 'fresh');
    assert.deepEqual(await names(dst), ['part.txt']);
  });
});

describe('azure-blob small files put whole at commit', () => {
  /** Past the second after `since`: the service's clock has moved on from an attempt opened then. */
  const nextSecond = (since: number): Promise<void> =>
    sleep(Math.max(0, (Math.floor(since / 1000) + 2) * 1000 - Date.now()));

  heldFileChecks(async () => {
    const dst = await freshContainer();
    return {
      open: (taskId, attemptId) =>
        azureBlobSink.open(endpoint(dst.containerName, {}, 'out'), attempt(taskId, attemptId)),
      names: () => names(dst),
      content: (name) => content(dst, name),
      async inspect(name, held) {
        // Put whole: one request (Put Blob), so the blob has no blocks.
        const blob = dst.getBlockBlobClient(name);
        const blocks = (await blob.getBlockList('committed')).committedBlocks ?? [];
        assert.equal(blocks.length, held ? 0 : 1, `${name} blocks`);
        assert.equal((await blob.getProperties()).metadata?.[ATTEMPT_METADATA], 'a1', `${name} metadata`);
      },
    };
  });

  it('of two attempts holding a file at once, the first to commit wins and the other gets a conflict', async () => {
    const dst = await freshContainer();
    const sink = endpoint(dst.containerName, {}, 'out');
    const opened = Date.now();
    const stale = await azureBlobSink.open(sink, attempt('t1', 'a1'));
    const fresh = await azureBlobSink.open(sink, attempt('t1', 'a2'));
    await stale.stageDirect!('part.txt', keepable(Buffer.from('stale')));
    await fresh.stageDirect!('part.txt', keepable(Buffer.from('fresh')));
    // A stale attempt is one the service gave up on: its lease lapsed, seconds after it began.
    await nextSecond(opened);
    await fresh.commit();
    await rejectsWith(
      stale.commit(),
      'conflict',
      /changed after this attempt began: another attempt committed the blob first \(commit\)$/,
    );
    assert.equal((await content(dst, 'part.txt')).toString(), 'fresh');
    assert.deepEqual(await names(dst), ['part.txt']);
  });

  it('replaces a blob written before the attempt began, even in the same second', async () => {
    const dst = await freshContainer();
    await put(dst, 'part.txt', 'earlier run');
    const writer = await azureBlobSink.open(endpoint(dst.containerName, {}, 'out'), attempt('t1', 'a1'));
    await writer.stageDirect!('part.txt', keepable(Buffer.from('this run')));
    await writer.commit();
    assert.equal((await content(dst, 'part.txt')).toString(), 'this run');
  });

  it('counts a put that landed already (its request tried again) as done, without a second put', async () => {
    const dst = await freshContainer();
    const opened = Date.now();
    const writer = await azureBlobSink.open(endpoint(dst.containerName, {}, 'out'), attempt('t1', 'a1'));
    const data = randomBytes(5000);
    await writer.stageDirect!('twice.bin', keepable(data));
    await nextSecond(opened);
    // What the first try of the commit's put left, its answer lost on the way back.
    const blob = dst.getBlockBlobClient('twice.bin');
    await blob.upload(data, data.length, { metadata: { [ATTEMPT_METADATA]: 'a1' } });
    const { etag } = await blob.getProperties();
    await writer.commit();
    assert.equal((await blob.getProperties()).etag, etag, 'not put again');
    assert.ok((await content(dst, 'twice.bin')).equals(data));
  });

  it('wins over another attempt that has only staged blocks of its blob', async () => {
    const dst = await freshContainer();
    const sink = endpoint(dst.containerName, {}, 'out');
    const opened = Date.now();
    const mine = await azureBlobSink.open(sink, attempt('t1', 'a1'));
    const other = await azureBlobSink.open(sink, attempt('t1', 'a2'));
    await mine.stageDirect!('part.txt', keepable(Buffer.from('mine')));
    await nextSecond(opened);
    // Uncommitted blocks are no change to the blob: the conditional put goes through.
    await other.stage({ name: 'part.txt', ...bytes('theirs') });
    await mine.commit();
    assert.equal((await content(dst, 'part.txt')).toString(), 'mine');
    // Its commit comes after a commit made since it began: it lost.
    await rejectsWith(other.commit(), 'conflict', /another attempt committed the blob first \(commit\)$/);
    assert.equal((await content(dst, 'part.txt')).toString(), 'mine');
  });

  it(`holds at most ${HELD_FILES_MAX} files open in the node, and stages the ones past that at once`, async () => {
    const dst = await freshContainer();
    const writer = await azureBlobSink.open(endpoint(dst.containerName, {}, 'out'), attempt('t1', 'a1'));
    const count = HELD_FILES_MAX + 3;
    const directs: TestDirect[] = [];
    for (let i = 0; i < count; i++) {
      const direct = keepable(Buffer.from(`file ${i}`));
      directs.push(direct);
      await writer.stageDirect!(`f${String(i).padStart(5, '0')}.txt`, direct);
    }
    assert.deepEqual(
      directs.map((d) => d.kept.taken),
      directs.map((_, i) => (i < HELD_FILES_MAX ? 1 : 0)),
    );
    await writer.commit();
    assert.equal((await names(dst)).length, count);
    for (const i of [HELD_FILES_MAX - 1, HELD_FILES_MAX, count - 1]) {
      const name = `f${String(i).padStart(5, '0')}.txt`;
      assert.equal((await content(dst, name)).toString(), `file ${i}`);
      const blocks = (await dst.getBlockBlobClient(name).getBlockList('committed')).committedBlocks;
      assert.equal(blocks?.length, i < HELD_FILES_MAX ? 0 : 1, name);
    }
    assert.ok(directs.every((d) => d.kept.released === d.kept.taken));
    // All were let go: the next attempt holds again.
    const next = await azureBlobSink.open(endpoint(dst.containerName, {}, 'out'), attempt('t2', 'a2'));
    const direct = keepable(Buffer.from('again'));
    await next.stageDirect!('again.txt', direct);
    assert.equal(direct.kept.taken, 1);
    await next.abort();
  });
});

describe('azure-blob credentials', () => {
  it('takes an account URL with an account name and key, and refuses a wrong key in that form', async () => {
    const c = await freshContainer();
    await put(c, 'a.txt', 'a');
    const withKey = (accountKey: string): Record<string, unknown> => ({
      accountUrl: azurite.accountUrl,
      accountName: DEV_ACCOUNT,
      accountKey,
    });
    assert.deepEqual(await plan(endpoint(c.containerName, {}, 'lake', withKey(DEV_KEY))), [
      { kind: 'files', files: [{ path: 'a.txt', size: 1 }] },
    ]);
    const wrongKey = Buffer.from('not the key').toString('base64');
    const err = await rejectsWith(
      azureBlobSink.open(endpoint(c.containerName, {}, 'out', withKey(wrongKey)), attempt('t1', 'a1')),
      'store_auth',
      /^azure-blob "out": the credentials were refused for container/,
    );
    assert.ok(!err.message.includes(wrongKey));
  });

  it('refuses a connection string given together with an account key', async () => {
    await rejectsWith(
      plan(
        endpoint('any', {}, 'lake', {
          connectionString: connectionStringFor(azurite.accountUrl),
          accountUrl: azurite.accountUrl,
          accountName: DEV_ACCOUNT,
          accountKey: DEV_KEY,
        }),
      ),
      'bad_request',
      /give either connectionString/,
    );
  });
});

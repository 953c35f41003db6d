import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { once } from 'node:events';
import { createServer } from 'node:net';
import { Readable } from 'node:stream';
import { finished } from 'node:stream/promises';
import { after, before, describe, it } from 'node:test';
import { BlobServiceClient, type ContainerClient } from '@azure/storage-blob';
import {
  DEV_ACCOUNT,
  DEV_KEY,
  connectionStringFor,
  startAzurite,
  type Azurite,
} from '../../../test/helpers/azurite.ts';
import { FerryError } from '../../common/errors.ts';
import type { ResolvedEndpointT } from '../../protocol/task.ts';
import type { AttemptContext, ConnectorContext, SourceObject, StagedObject } from '../connector.ts';
import { azureBlobSink, azureBlobSource } from './azure-blob-connector.ts';

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

function ctx(signal = new AbortController().signal): ConnectorContext {
  return { signal, allowedRoots: [] };
}

function attempt(taskId: string, attemptId: string, signal = new AbortController().signal): AttemptContext {
  return { ...ctx(signal), taskId, attemptId, taskIndex: 0 };
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

function sha256(data: Buffer | string): string {
  return createHash('sha256').update(data).digest('hex');
}

async function collect(objects: AsyncIterable<SourceObject>): Promise<SourceObject[]> {
  const all: SourceObject[] = [];
  for await (const o of objects) all.push(o);
  return all;
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

/** A port nothing listens on: bound once by us, then released. */
async function closedPort(): Promise<number> {
  const server = createServer();
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  const address = server.address();
  assert.ok(address !== null && typeof address === 'object');
  server.close();
  await once(server, 'close');
  return address.port;
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

    const partitions = await azureBlobSource.plan(
      endpoint(c.containerName, { prefix: '/in/', filesPerTask: 2, bytesPerTask: 25 }),
      ctx(),
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
    const csv = await azureBlobSource.plan(
      endpoint(c.containerName, { prefix: 'in', glob: '**/*.csv' }),
      ctx(),
    );
    assert.deepEqual(csv, [
      {
        kind: 'files',
        files: [
          { path: 'a.csv', size: 1 },
          { path: 'deep/b.csv', size: 1 },
        ],
      },
    ]);
    const all = await azureBlobSource.plan(endpoint(c.containerName), ctx());
    assert.deepEqual(
      all.flatMap((p) => (p.kind === 'files' ? p.files.map((f) => f.path) : [])),
      ['in/a.csv', 'in/a.txt', 'in/deep/b.csv', 'other/c.csv'],
    );
    assert.deepEqual(await azureBlobSource.plan(endpoint(c.containerName, { prefix: 'none' }), ctx()), []);
  });

  it('reports a missing container as store_object_missing naming it', async () => {
    await rejectsWith(
      azureBlobSource.plan(endpoint('nope'), ctx()),
      'store_object_missing',
      /^azure-blob "lake": container "nope" does not exist \(plan\)$/,
    );
    await rejectsWith(
      azureBlobSink.open(endpoint('nope', {}, 'out'), attempt('t1', 'a1')),
      'store_object_missing',
      /^azure-blob "out": container "nope" does not exist \(open\)$/,
    );
  });

  it('refuses incomplete credentials and a prefix that climbs', async () => {
    await rejectsWith(
      azureBlobSource.plan(endpoint('any', {}, 'lake', { accountUrl: azurite.accountUrl }), ctx()),
      'bad_request',
      /give either connectionString/,
    );
    await rejectsWith(
      azureBlobSource.plan(endpoint('any', { prefix: 'a/../b' }), ctx()),
      'bad_request',
      /'\.\.'/,
    );
  });
});

describe('azure-blob copy', () => {
  it('copies bytes identically through read, stage and commit: several blocks, one, and none', async () => {
    const src = await freshContainer();
    const dst = await freshContainer();
    const big = randomBytes(20 * 1024 * 1024 + 17);
    await put(src, 'data/big.bin', big);
    await put(src, 'data/nested/small.txt', 'hello, ferry\n');
    await put(src, 'data/empty', '');

    const source = endpoint(src.containerName, { prefix: 'data', filesPerTask: 2 });
    const partitions = await azureBlobSource.plan(source, ctx());
    assert.equal(partitions.length, 2);
    const writer = await azureBlobSink.open(
      endpoint(dst.containerName, { prefix: 'out/here' }, 'out'),
      attempt('t1', 'a1'),
    );
    const staged: StagedObject[] = [];
    for (const partition of partitions) {
      for await (const object of azureBlobSource.read(source, partition, attempt('t1', 'a1'))) {
        staged.push(await writer.stage(object.name, object.stream));
        assert.equal(object.rows(), undefined);
      }
    }
    assert.deepEqual(await names(dst), []);
    await writer.commit();

    assert.deepEqual(
      staged.map((s) => [s.name, s.bytes, s.sha256]),
      [
        ['big.bin', big.length, sha256(big)],
        ['empty', 0, sha256('')],
        ['nested/small.txt', 13, sha256('hello, ferry\n')],
      ],
    );
    assert.deepEqual(await names(dst), ['out/here/big.bin', 'out/here/empty', 'out/here/nested/small.txt']);
    assert.ok((await content(dst, 'out/here/big.bin')).equals(big));
    assert.equal((await content(dst, 'out/here/empty')).length, 0);
    assert.equal((await content(dst, 'out/here/nested/small.txt')).toString(), 'hello, ferry\n');
    const blocks = await dst.getBlockBlobClient('out/here/big.bin').getBlockList('committed');
    assert.equal(blocks.committedBlocks?.length, 3, '20 MiB goes up as three 8 MiB blocks');
  });

  it('shows nothing in the container before commit', async () => {
    const dst = await freshContainer();
    const writer = await azureBlobSink.open(endpoint(dst.containerName, {}, 'out'), attempt('t1', 'a1'));
    await writer.stage('a/b.txt', Readable.from([Buffer.from('payload')]));
    await writer.stage('empty.txt', Readable.from([]));
    assert.deepEqual(await names(dst), []);
    await writer.commit();
    assert.deepEqual(await names(dst), ['a/b.txt', 'empty.txt']);
    await writer.commit(); // a repeated commit is a no-op
    assert.deepEqual(await names(dst), ['a/b.txt', 'empty.txt']);
  });

  it('lets a second attempt replace the first instead of adding to it', async () => {
    const dst = await freshContainer();
    const sink = endpoint(dst.containerName, { prefix: 'p' }, 'out');
    const first = await azureBlobSink.open(sink, attempt('t1', 'a1'));
    await first.stage('part.txt', Readable.from([Buffer.from('first attempt, longer')]));
    await first.commit();

    const second = await azureBlobSink.open(sink, attempt('t1', 'attempt-2'));
    await second.stage('part.txt', Readable.from([Buffer.from('second')]));
    assert.equal((await content(dst, 'p/part.txt')).toString(), 'first attempt, longer');
    await second.commit();
    assert.equal((await content(dst, 'p/part.txt')).toString(), 'second');
    assert.deepEqual(await names(dst), ['p/part.txt']);
  });

  it('of two attempts staging at once, the first to commit wins and the other gets a conflict', async () => {
    const dst = await freshContainer();
    const sink = endpoint(dst.containerName, {}, 'out');
    const stale = await azureBlobSink.open(sink, attempt('t1', 'a1'));
    const fresh = await azureBlobSink.open(sink, attempt('t1', 'a2'));
    await stale.stage('part.txt', Readable.from([Buffer.from('stale')]));
    await fresh.stage('part.txt', Readable.from([Buffer.from('fresh')]));
    await fresh.commit();
    await rejectsWith(stale.commit(), 'conflict', /another attempt committed the blob first \(commit\)$/);
    assert.equal((await content(dst, 'part.txt')).toString(), 'fresh');
    assert.deepEqual(await names(dst), ['part.txt']);
  });

  it('fails a stage with the error its source fails with', async () => {
    const dst = await freshContainer();
    const writer = await azureBlobSink.open(endpoint(dst.containerName, {}, 'out'), attempt('t1', 'a1'));
    const source = new Readable({ read() {} });
    const staging = writer.stage('broken.csv', source);
    source.destroy(new FerryError('store_error', 'source broke'));
    await rejectsWith(staging, 'store_error', /source broke/);
    await writer.abort();
    assert.deepEqual(await names(dst), []);
  });

  it('leaves nothing behind on abort, and abort may be repeated', async () => {
    const dst = await freshContainer();
    const writer = await azureBlobSink.open(
      endpoint(dst.containerName, { prefix: 'out' }, 'out'),
      attempt('t1', 'a1'),
    );
    await writer.stage('one.txt', Readable.from([Buffer.from('1')]));
    await writer.stage('two/three.txt', Readable.from([Buffer.from('3')]));
    await writer.abort();
    await writer.abort();
    assert.deepEqual(await names(dst), []);
    await rejectsWith(writer.commit(), 'conflict');
  });

  it('refuses object names that escape the prefix, and destroys their streams', async () => {
    const dst = await freshContainer();
    const writer = await azureBlobSink.open(
      endpoint(dst.containerName, { prefix: 'p' }, 'out'),
      attempt('t1', 'a1'),
    );
    for (const name of ['../escape.txt', 'a/../../escape.txt', '/etc/passwd', '.ferry-staging/x']) {
      const stream = Readable.from([Buffer.from('x')]);
      await rejectsWith(writer.stage(name, stream), 'forbidden');
      assert.ok(stream.destroyed);
    }
    await writer.commit();
    assert.deepEqual(await names(dst), []);
  });
});

describe('azure-blob errors', () => {
  it('reports a wrong account key as store_auth, not retryable, without the key', async () => {
    const c = await freshContainer();
    const wrongKey = Buffer.from('not the key').toString('base64');
    const err = await rejectsWith(
      azureBlobSource.plan(
        endpoint(c.containerName, {}, 'lake', {
          connectionString: connectionStringFor(azurite.accountUrl, wrongKey),
        }),
        ctx(),
      ),
      'store_auth',
      /^azure-blob "lake": the credentials were refused for container/,
    );
    assert.equal(err.retryable, false);
    assert.ok(!err.message.includes(wrongKey));
    // The same through accountUrl + accountName + accountKey.
    await rejectsWith(
      azureBlobSink.open(
        endpoint(c.containerName, {}, 'out', {
          accountUrl: azurite.accountUrl,
          accountName: DEV_ACCOUNT,
          accountKey: wrongKey,
        }),
        attempt('t1', 'a1'),
      ),
      'store_auth',
    );
    // ... and the right key through that form works.
    const ok = await azureBlobSource.plan(
      endpoint(c.containerName, {}, 'lake', {
        accountUrl: azurite.accountUrl,
        accountName: DEV_ACCOUNT,
        accountKey: DEV_KEY,
      }),
      ctx(),
    );
    assert.deepEqual(ok, []);
  });

  it('reports an unreachable service as store_unreachable, retryable', async () => {
    const port = await closedPort();
    const err = await rejectsWith(
      azureBlobSource.plan(
        endpoint('any', {}, 'lake', {
          connectionString: connectionStringFor(`http://127.0.0.1:${port}/${DEV_ACCOUNT}`),
        }),
        ctx(),
      ),
      'store_unreachable',
      /^azure-blob "lake": cannot reach the service for container "any": connection refused \(plan\)$/,
    );
    assert.equal(err.retryable, true);
  });

  it('reports a blob gone since planning as store_object_missing', async () => {
    const c = await freshContainer();
    await rejectsWith(
      collect(
        azureBlobSource.read(
          endpoint(c.containerName, { prefix: 'in' }),
          { kind: 'files', files: [{ path: 'gone.txt', size: 1 }] },
          attempt('t1', 'a1'),
        ),
      ),
      'store_object_missing',
      /blob "in\/gone\.txt" in container "case-.*" does not exist \(read\)/,
    );
  });

  it('refuses partitions it did not plan', async () => {
    const c = await freshContainer();
    await rejectsWith(
      collect(azureBlobSource.read(endpoint(c.containerName), { kind: 'whole' }, attempt('t1', 'a1'))),
      'bad_request',
    );
  });
});

describe('azure-blob cancellation', () => {
  it('stops a read when the signal aborts', async () => {
    const c = await freshContainer();
    await put(c, 'big.bin', randomBytes(16 * 1024 * 1024));
    const controller = new AbortController();
    const [partition] = await azureBlobSource.plan(endpoint(c.containerName), ctx());
    assert.ok(partition);
    const objects = azureBlobSource.read(
      endpoint(c.containerName),
      partition,
      attempt('t1', 'a1', controller.signal),
    );
    const [object] = await collect(objects);
    assert.ok(object);
    await once(object.stream, 'data');
    object.stream.pause();
    controller.abort();
    await rejectsWith(finished(object.stream), 'cancelled');
  });

  it('stops a stage when the signal aborts and publishes nothing', async () => {
    const dst = await freshContainer();
    const controller = new AbortController();
    const writer = await azureBlobSink.open(
      endpoint(dst.containerName, {}, 'out'),
      attempt('t1', 'a1', controller.signal),
    );
    let reads = 0;
    // An endless source: only the signal can end this stage. Aborted after the first blocks went up.
    const endless = new Readable({
      read() {
        if (++reads === 300) controller.abort();
        this.push(Buffer.alloc(64 * 1024, 1));
      },
    });
    await rejectsWith(writer.stage('endless.bin', endless), 'cancelled', /cancelled \(stage\)/);
    assert.ok(endless.destroyed);
    await writer.abort();
    assert.deepEqual(await names(dst), []);
  });
});

import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { once } from 'node:events';
import { mkdir, mkdtemp, readdir, readFile, realpath, rm, symlink, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { PassThrough, Readable } from 'node:stream';
import { finished } from 'node:stream/promises';
import { after, before, describe, it } from 'node:test';
import { FerryError } from '../../common/errors.ts';
import type { PartitionT, ResolvedEndpointT } from '../../protocol/task.ts';
import type { AttemptContext, ConnectorContext, SourceObject, StagedObject } from '../connector.ts';
import { filesystemSink, filesystemSource } from './filesystem-connector.ts';

let base: string; // realpath'd temp dir holding everything this file creates
let allowed: string; // the --allow-path root
let outside: string; // a sibling folder no test may reach

before(async () => {
  base = await realpath(await mkdtemp(path.join(os.tmpdir(), 'ferry-fs-test-')));
  allowed = path.join(base, 'allowed');
  outside = path.join(base, 'outside');
  await mkdir(allowed);
  await mkdir(outside);
  await writeFile(path.join(outside, 'secret.txt'), 'secret');
});

after(async () => {
  await rm(base, { recursive: true, force: true });
});

let counter = 0;
/** A fresh folder under the allowed root, so tests do not see each other's files. */
async function freshRoot(): Promise<string> {
  const dir = path.join(allowed, `case-${++counter}`);
  await mkdir(dir);
  return dir;
}

function endpoint(
  root: string,
  options: Record<string, unknown> = {},
  linkedService = 'in',
): ResolvedEndpointT {
  return { type: 'filesystem', linkedService, properties: { root }, options };
}

function ctx(
  signal = new AbortController().signal,
  allowedRoots: readonly string[] = [allowed],
): ConnectorContext {
  return { signal, allowedRoots };
}

function attempt(taskId: string, attemptId: string, signal = new AbortController().signal): AttemptContext {
  return { ...ctx(signal), taskId, attemptId, taskIndex: 0 };
}

async function put(root: string, rel: string, content: string | Buffer): Promise<void> {
  await mkdir(path.dirname(path.join(root, rel)), { recursive: true });
  await writeFile(path.join(root, rel), content);
}

/** Every file below `dir`, relative, sorted; the staging folder included so leftovers show. */
async function tree(dir: string): Promise<string[]> {
  const entries = await readdir(dir, { recursive: true, withFileTypes: true });
  return entries
    .filter((e) => e.isFile())
    .map((e) => path.relative(dir, path.join(e.parentPath, e.name)))
    .sort();
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

/** Plans, reads and stages every partition into one attempt, then commits it. */
async function copyAll(
  source: ResolvedEndpointT,
  sink: ResolvedEndpointT,
  taskId = 't1',
  attemptId = 'a1',
): Promise<StagedObject[]> {
  const partitions = await filesystemSource.plan(source, ctx());
  const writer = await filesystemSink.open(sink, attempt(taskId, attemptId));
  const staged: StagedObject[] = [];
  for (const partition of partitions) {
    for await (const object of filesystemSource.read(source, partition, attempt(taskId, attemptId))) {
      staged.push(await writer.stage(object.name, object.stream));
      assert.equal(object.rows(), undefined);
    }
  }
  await writer.commit();
  return staged;
}

describe('filesystem plan', () => {
  it('lists files recursively in path order and groups them by count and bytes', async () => {
    const root = await freshRoot();
    await put(root, 'z.txt', 'x'.repeat(5));
    await put(root, 'b/d.txt', 'x'.repeat(10));
    await put(root, 'a.txt', 'x'.repeat(10));
    await put(root, 'b/c.txt', 'x'.repeat(10));
    await put(root, 'big.bin', 'x'.repeat(100));
    await put(root, 'empty.txt', '');
    await put(root, '.ferry-staging/t.a/left.txt', 'staged');
    await put(root, 'b/.ferry-staging/t.a/left.txt', 'staged');

    const partitions = await filesystemSource.plan(
      endpoint(root, { filesPerTask: 2, bytesPerTask: 25 }),
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
      // bigger than bytesPerTask: a partition of its own
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

  it('applies the default limits of 64 files per task', async () => {
    const root = await freshRoot();
    await Promise.all(
      Array.from({ length: 70 }, (_, i) => put(root, `f${String(i).padStart(3, '0')}.txt`, 'x')),
    );
    const partitions = await filesystemSource.plan(endpoint(root), ctx());
    assert.deepEqual(
      partitions.map((p) => (p.kind === 'files' ? p.files.length : -1)),
      [64, 6],
    );
  });

  it('filters with a glob relative to path', async () => {
    const root = await freshRoot();
    await put(root, 'in/a.csv', '1');
    await put(root, 'in/a.txt', '1');
    await put(root, 'in/deep/b.csv', '1');
    await put(root, 'other/c.csv', '1');
    const all = await filesystemSource.plan(endpoint(root, { path: 'in', glob: '**/*.csv' }), ctx());
    assert.deepEqual(all, [
      {
        kind: 'files',
        files: [
          { path: 'a.csv', size: 1 },
          { path: 'deep/b.csv', size: 1 },
        ],
      },
    ]);
    const top = await filesystemSource.plan(endpoint(root, { path: 'in', glob: '*.csv' }), ctx());
    assert.deepEqual(top, [{ kind: 'files', files: [{ path: 'a.csv', size: 1 }] }]);
  });

  it('returns no partitions for no files', async () => {
    const root = await freshRoot();
    await mkdir(path.join(root, 'empty'));
    assert.deepEqual(await filesystemSource.plan(endpoint(root, { path: 'empty' }), ctx()), []);
    await put(root, 'a.txt', '1');
    assert.deepEqual(await filesystemSource.plan(endpoint(root, { glob: '*.csv' }), ctx()), []);
  });

  it('reports a missing source folder as store_object_missing naming it', async () => {
    const root = await freshRoot();
    const missing = path.join(root, 'nope');
    await rejectsWith(
      filesystemSource.plan(endpoint(root, { path: 'nope' }), ctx()),
      'store_object_missing',
      new RegExp(`^filesystem "in": ${missing}`),
    );
    await rejectsWith(
      filesystemSource.plan(endpoint(path.join(allowed, 'no-root')), ctx()),
      'store_object_missing',
      /no-root/,
    );
  });
});

describe('filesystem copy', () => {
  it('copies bytes identically through read, stage and commit', async () => {
    const src = await freshRoot();
    const dst = await freshRoot();
    const big = randomBytes(3 * 1024 * 1024 + 17);
    await put(src, 'data/big.bin', big);
    await put(src, 'data/nested/small.txt', 'hello, ferry\n');
    await put(src, 'data/empty', '');

    const staged = await copyAll(
      endpoint(src, { path: 'data', filesPerTask: 2 }),
      endpoint(dst, { path: 'out/here' }, 'out'),
    );
    assert.deepEqual(
      staged.map((s) => [s.name, s.bytes, s.sha256]),
      [
        ['big.bin', big.length, sha256(big)],
        ['empty', 0, sha256('')],
        ['nested/small.txt', 13, sha256('hello, ferry\n')],
      ],
    );
    const out = path.join(dst, 'out/here');
    assert.deepEqual(await tree(dst), ['out/here/big.bin', 'out/here/empty', 'out/here/nested/small.txt']);
    assert.ok((await readFile(path.join(out, 'big.bin'))).equals(big));
    assert.equal(await readFile(path.join(out, 'nested/small.txt'), 'utf8'), 'hello, ferry\n');
  });

  it('shows nothing in the destination before commit', async () => {
    const dst = await freshRoot();
    const writer = await filesystemSink.open(endpoint(dst, {}, 'out'), attempt('t1', 'a1'));
    await writer.stage('a/b.txt', Readable.from([Buffer.from('payload')]));
    const visible = (await tree(dst)).filter((f) => !f.startsWith('.ferry-staging/'));
    assert.deepEqual(visible, []);
    await writer.commit();
    assert.deepEqual(await tree(dst), ['a/b.txt']);
    await writer.commit(); // a repeated commit is a no-op
    assert.deepEqual(await tree(dst), ['a/b.txt']);
  });

  it('lets a second attempt replace the first instead of adding to it', async () => {
    const dst = await freshRoot();
    const sink = endpoint(dst, {}, 'out');
    const first = await filesystemSink.open(sink, attempt('t1', 'a1'));
    await first.stage('part.txt', Readable.from([Buffer.from('first')]));
    await first.commit();

    const second = await filesystemSink.open(sink, attempt('t1', 'a2'));
    await second.stage('part.txt', Readable.from([Buffer.from('second')]));
    assert.equal(await readFile(path.join(dst, 'part.txt'), 'utf8'), 'first');
    await second.commit();
    assert.equal(await readFile(path.join(dst, 'part.txt'), 'utf8'), 'second');
    assert.deepEqual(await tree(dst), ['part.txt']);
  });

  it("a commit clears the task's other attempts; a stale attempt can then no longer stage or commit", async () => {
    const dst = await freshRoot();
    const sink = endpoint(dst, {}, 'out');
    const stale = await filesystemSink.open(sink, attempt('t1', 'a1'));
    await stale.stage('part.txt', Readable.from([Buffer.from('stale')]));
    // task t1.b is another task whose staging name begins like t1's; it must survive
    const neighbour = await filesystemSink.open(sink, attempt('t1.b', 'a1'));
    await neighbour.stage('n.txt', Readable.from([Buffer.from('n')]));

    const fresh = await filesystemSink.open(sink, attempt('t1', 'a2'));
    // Opening leaves the stale attempt alone: it might be the live one.
    assert.deepEqual(await readdir(path.join(dst, '.ferry-staging')), ['t1.a1', 't1.a2', 't1.b.a1'].sort());
    await fresh.stage('part.txt', Readable.from([Buffer.from('fresh')]));
    await fresh.commit();
    assert.deepEqual(await readdir(path.join(dst, '.ferry-staging')), ['t1.b.a1']);
    await rejectsWith(stale.commit(), 'conflict', /another attempt of task t1 committed/);
    await rejectsWith(
      stale.stage('more.txt', Readable.from([Buffer.from('x')])),
      'conflict',
      /another attempt of task t1 committed/,
    );
    await neighbour.commit();
    assert.deepEqual(await tree(dst), ['n.txt', 'part.txt']);
    assert.equal(await readFile(path.join(dst, 'part.txt'), 'utf8'), 'fresh');
  });

  it('fails a stage with the error its source fails with, even before it is read', async () => {
    const dst = await freshRoot();
    const writer = await filesystemSink.open(endpoint(dst, {}, 'out'), attempt('t1', 'a1'));
    const source = new PassThrough();
    const staging = writer.stage('broken.csv', source);
    source.destroy(new FerryError('store_error', 'source broke'));
    await rejectsWith(staging, 'store_error', /source broke/);
    await writer.abort();
    assert.deepEqual(await tree(dst), []);
  });

  it('leaves nothing behind on abort, and abort may be repeated', async () => {
    const dst = await freshRoot();
    const writer = await filesystemSink.open(endpoint(dst, { path: 'out' }, 'out'), attempt('t1', 'a1'));
    await writer.stage('one.txt', Readable.from([Buffer.from('1')]));
    await writer.stage('two/three.txt', Readable.from([Buffer.from('3')]));
    await writer.abort();
    await writer.abort();
    assert.deepEqual(await readdir(path.join(dst, 'out')), []);
    await rejectsWith(writer.commit(), 'conflict');
  });
});

describe('filesystem path safety', () => {
  it('refuses a root outside the allowed roots, naming both', async () => {
    const err = await rejectsWith(filesystemSource.plan(endpoint('/etc'), ctx()), 'forbidden');
    assert.equal(
      err.message,
      `filesystem "in": /etc is outside the allowed roots (${allowed}) — start the node with --allow-path`,
    );
    await rejectsWith(
      filesystemSink.open(endpoint(outside, {}, 'out'), attempt('t1', 'a1')),
      'forbidden',
      /outside the allowed roots/,
    );
  });

  it('refuses every path when no root is allowed', async () => {
    const root = await freshRoot();
    await rejectsWith(
      filesystemSource.plan(endpoint(root), ctx(undefined, [])),
      'forbidden',
      /allowed roots \(none\)/,
    );
  });

  it('refuses a root that is a symlink to outside the allowed roots', async () => {
    const link = path.join(allowed, `link-${++counter}`);
    await symlink(outside, link);
    await rejectsWith(
      filesystemSource.plan(endpoint(link), ctx()),
      'forbidden',
      /-> .*outside.* is outside the allowed roots/,
    );
  });

  it('refuses .. escapes in source and sink paths', async () => {
    const root = await freshRoot();
    await rejectsWith(
      filesystemSource.plan(endpoint(root, { path: '../../outside' }), ctx()),
      'forbidden',
      /escapes/,
    );
    await rejectsWith(
      filesystemSource.plan(endpoint(root, { path: '/etc' }), ctx()),
      'forbidden',
      /absolute/,
    );
    await rejectsWith(
      filesystemSink.open(endpoint(root, { path: 'a/../../..' }, 'out'), attempt('t1', 'a1')),
      'forbidden',
      /escapes/,
    );
    const partition: PartitionT = { kind: 'files', files: [{ path: '../../outside/secret.txt', size: 6 }] };
    await rejectsWith(
      collect(filesystemSource.read(endpoint(root), partition, attempt('t1', 'a1'))),
      'forbidden',
      /escapes/,
    );
  });

  it('refuses object names that escape the sink folder, and destroys their streams', async () => {
    const dst = await freshRoot();
    const writer = await filesystemSink.open(endpoint(dst, {}, 'out'), attempt('t1', 'a1'));
    for (const name of ['../escape.txt', 'a/../../escape.txt', '/etc/passwd', '.ferry-staging/t1.a9/x']) {
      const stream = Readable.from([Buffer.from('x')]);
      await rejectsWith(writer.stage(name, stream), 'forbidden');
      assert.ok(stream.destroyed);
    }
    await writer.abort();
    assert.deepEqual(await tree(base).then((all) => all.filter((f) => f.includes('escape'))), []);
  });

  it('refuses symlinks that lead outside the root', async () => {
    const src = await freshRoot();
    await put(src, 'ok.txt', 'ok');
    await symlink(path.join(outside, 'secret.txt'), path.join(src, 'leak.txt'));
    await rejectsWith(
      filesystemSource.plan(endpoint(src), ctx()),
      'forbidden',
      /leak\.txt resolves to .*outside/,
    );

    // a file swapped for such a link after planning is refused at read time too
    const partition: PartitionT = { kind: 'files', files: [{ path: 'leak.txt', size: 6 }] };
    await rejectsWith(
      collect(filesystemSource.read(endpoint(src), partition, attempt('t1', 'a1'))),
      'forbidden',
    );

    const dst = await freshRoot();
    await symlink(outside, path.join(dst, 'out'));
    await rejectsWith(
      filesystemSink.open(endpoint(dst, { path: 'out/sub' }, 'out'), attempt('t1', 'a1')),
      'forbidden',
      /outside the root/,
    );
    assert.deepEqual(await readdir(outside), ['secret.txt']);
  });

  it('follows symlinks that stay inside the root', async () => {
    const src = await freshRoot();
    await put(src, 'real/data.txt', 'data');
    await symlink(path.join(src, 'real/data.txt'), path.join(src, 'alias.txt'));
    const partitions = await filesystemSource.plan(endpoint(src), ctx());
    assert.deepEqual(partitions, [
      {
        kind: 'files',
        files: [
          { path: 'alias.txt', size: 4 },
          { path: 'real/data.txt', size: 4 },
        ],
      },
    ]);
  });

  it('refuses partitions it did not plan', async () => {
    const src = await freshRoot();
    await rejectsWith(
      collect(filesystemSource.read(endpoint(src), { kind: 'whole' }, attempt('t1', 'a1'))),
      'bad_request',
    );
  });
});

describe('filesystem cancellation', () => {
  it('stops a read when the signal aborts', async () => {
    const src = await freshRoot();
    await put(src, 'big.bin', randomBytes(16 * 1024 * 1024));
    const controller = new AbortController();
    const [partition] = await filesystemSource.plan(endpoint(src), ctx());
    assert.ok(partition);
    const objects = filesystemSource.read(endpoint(src), partition, attempt('t1', 'a1', controller.signal));
    const [object] = await collect(objects);
    assert.ok(object);
    await once(object.stream, 'data');
    object.stream.pause();
    controller.abort();
    await rejectsWith(finished(object.stream), 'cancelled');
  });

  it('stops a stage when the signal aborts and keeps nothing of it', async () => {
    const dst = await freshRoot();
    const controller = new AbortController();
    const writer = await filesystemSink.open(
      endpoint(dst, {}, 'out'),
      attempt('t1', 'a1', controller.signal),
    );
    let reads = 0;
    // An endless source: only the signal can end this stage.
    const endless = new Readable({
      read() {
        if (++reads === 10) controller.abort();
        this.push(Buffer.alloc(64 * 1024, 1));
      },
    });
    await rejectsWith(writer.stage('endless.bin', endless), 'cancelled');
    assert.ok(endless.destroyed);
    assert.deepEqual(await readdir(path.join(dst, '.ferry-staging', 't1.a1')), []);
    await writer.abort();
    assert.deepEqual(await tree(dst), []);
  });
});

/**
 * What only the filesystem store does: planning a folder (grouping, defaults, globs), the path
 * safety rules (allowed roots, `..`, symlinks), and the staging folder's details. Reading, writing,
 * the commit rules, cancellation and the error catalogue are checked by the conformance suite
 * (src/connectors/conformance/filesystem.conformance.test.ts).
 */
import assert from 'node:assert/strict';
import { once } from 'node:events';
import {
  appendFile,
  mkdir,
  mkdtemp,
  readdir,
  readFile,
  realpath,
  rm,
  symlink,
  truncate,
  writeFile,
} from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { Readable } from 'node:stream';
import { after, before, describe, it } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import type { PartitionT, ResolvedEndpointT } from '../../protocol/task.ts';
import type { AttemptContext, PlanContext, SourceObject } from '../connector.ts';
import { filesystemSink, filesystemSource } from './filesystem-connector.ts';
import { rejectsWith } from '../../../test/helpers/rejects-with.ts';
import { UploadBudget } from '../../common/upload-budget.ts';

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

function ctx(allowedRoots: readonly string[] = [allowed]): PlanContext {
  return { signal: new AbortController().signal, allowedRoots, watermark: null };
}

function attempt(taskId: string, attemptId: string): AttemptContext {
  return {
    signal: new AbortController().signal,
    allowedRoots: [allowed],
    uploadBudget: new UploadBudget(),
    runId: 'r1',
    activity: 'copy',
    taskId,
    attemptId,
    taskIndex: 0,
  };
}

/** The partitions of a plan. */
async function plan(source: ResolvedEndpointT, context: PlanContext = ctx()): Promise<PartitionT[]> {
  return (await filesystemSource.plan(source, context)).partitions;
}

function bytes(text: string): { stream: Readable } {
  return { stream: Readable.from([Buffer.from(text)]) };
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

async function collect(objects: AsyncIterable<SourceObject>): Promise<SourceObject[]> {
  const all: SourceObject[] = [];
  for await (const o of objects) all.push(o);
  return all;
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

    const partitions = await plan(endpoint(root, { filesPerTask: 2, bytesPerTask: 25 }), ctx());
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
    const partitions = await plan(endpoint(root));
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
    const all = await plan(endpoint(root, { path: 'in', glob: '**/*.csv' }));
    assert.deepEqual(all, [
      {
        kind: 'files',
        files: [
          { path: 'a.csv', size: 1 },
          { path: 'deep/b.csv', size: 1 },
        ],
      },
    ]);
    const top = await plan(endpoint(root, { path: 'in', glob: '*.csv' }));
    assert.deepEqual(top, [{ kind: 'files', files: [{ path: 'a.csv', size: 1 }] }]);
  });

  it('returns no partitions when the glob matches nothing', async () => {
    const root = await freshRoot();
    await put(root, 'a.txt', '1');
    assert.deepEqual(await plan(endpoint(root, { glob: '*.csv' })), []);
  });

  // A missing root is a conformance check; a missing folder below an existing root is this store's.
  it('reports a missing source folder below the root as store_object_missing naming it', async () => {
    const root = await freshRoot();
    const missing = path.join(root, 'nope');
    await rejectsWith(
      plan(endpoint(root, { path: 'nope' })),
      'store_object_missing',
      new RegExp(`^filesystem "in": ${missing} does not exist \\(plan\\)$`),
    );
  });
});

describe('filesystem staging', () => {
  it("a commit clears the task's other attempts; a stale attempt can then no longer stage or commit", async () => {
    const dst = await freshRoot();
    const sink = endpoint(dst, {}, 'out');
    const stale = await filesystemSink.open(sink, attempt('t1', 'a1'));
    await stale.stage({ name: 'part.txt', ...bytes('stale') });
    // task t1.b is another task whose staging name begins like t1's; it must survive
    const neighbour = await filesystemSink.open(sink, attempt('t1.b', 'a1'));
    await neighbour.stage({ name: 'n.txt', ...bytes('n') });

    const fresh = await filesystemSink.open(sink, attempt('t1', 'a2'));
    // Opening leaves the stale attempt alone: it might be the live one.
    assert.deepEqual(await readdir(path.join(dst, '.ferry-staging')), ['t1.a1', 't1.a2', 't1.b.a1'].sort());
    await fresh.stage({ name: 'part.txt', ...bytes('fresh') });
    await fresh.commit();
    assert.deepEqual(await readdir(path.join(dst, '.ferry-staging')), ['t1.b.a1']);
    await rejectsWith(stale.commit(), 'conflict', /another attempt of task t1 committed/);
    await rejectsWith(
      stale.stage({ name: 'more.txt', ...bytes('x') }),
      'conflict',
      /another attempt of task t1 committed/,
    );
    await neighbour.commit();
    assert.deepEqual(await tree(dst), ['n.txt', 'part.txt']);
    assert.equal(await readFile(path.join(dst, 'part.txt'), 'utf8'), 'fresh');
  });

  it('many attempts opening and finishing at once in one folder each keep their staging folder', async () => {
    // Each finish removes the staging folder once it is empty, often between another attempt's mkdir
    // of it and of its own folder inside it. Node's recursive mkdir lost that race about once in a
    // thousand opens here (ENOTDIR, reported as a missing folder, and the task failed for good).
    const dst = await freshRoot();
    const sink = endpoint(dst, {}, 'out');
    const failures: string[] = [];
    let finished = 0;
    await Promise.all(
      Array.from({ length: 16 }, async (_, lane) => {
        for (let i = 0; i < 400; i++) {
          try {
            const writer = await filesystemSink.open(sink, attempt(`t${lane}-${i}`, 'a1'));
            if (i % 100 === 0) {
              await writer.stage({ name: `f${lane}-${i}.txt`, ...bytes('x') });
              await writer.commit();
            } else {
              await writer.abort();
            }
            finished++;
          } catch (err) {
            failures.push((err as Error).message);
          }
        }
      }),
    );
    assert.deepEqual(failures.slice(0, 3), []);
    assert.equal(finished, 16 * 400);
    assert.deepEqual(
      (await readdir(dst)).filter((f) => !f.endsWith('.txt')),
      [],
      'no staging left',
    );
  });

  it('a cancelled stage removes its partial file at once, before abort', async () => {
    const dst = await freshRoot();
    const controller = new AbortController();
    const writer = await filesystemSink.open(endpoint(dst, {}, 'out'), {
      ...attempt('t1', 'a1'),
      signal: controller.signal,
    });
    let reads = 0;
    // An endless source: only the signal can end this stage.
    const endless = new Readable({
      read() {
        if (++reads === 10) controller.abort();
        this.push(Buffer.alloc(64 * 1024, 1));
      },
    });
    await rejectsWith(writer.stage({ name: 'endless.bin', stream: endless }), 'cancelled');
    assert.deepEqual(await readdir(path.join(dst, '.ferry-staging', 't1.a1')), []);
    await writer.abort();
  });
});

describe('filesystem path safety', () => {
  it('refuses a root outside the allowed roots, naming both', async () => {
    const err = await rejectsWith(plan(endpoint('/etc')), 'forbidden');
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
    await rejectsWith(plan(endpoint(root), ctx([])), 'forbidden', /allowed roots \(none\)/);
  });

  it('refuses a root that is a symlink to outside the allowed roots', async () => {
    const link = path.join(allowed, `link-${++counter}`);
    await symlink(outside, link);
    await rejectsWith(plan(endpoint(link)), 'forbidden', /-> .*outside.* is outside the allowed roots/);
  });

  it('refuses .. escapes in source and sink paths', async () => {
    const root = await freshRoot();
    await rejectsWith(plan(endpoint(root, { path: '../../outside' })), 'forbidden', /escapes/);
    await rejectsWith(plan(endpoint(root, { path: '/etc' })), 'forbidden', /absolute/);
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

  // The conformance suite checks these names are refused; here, that nothing landed anywhere on disk.
  it('writes nothing anywhere on disk for object names that escape the sink folder', async () => {
    const dst = await freshRoot();
    const writer = await filesystemSink.open(endpoint(dst, {}, 'out'), attempt('t1', 'a1'));
    for (const name of ['../escape.txt', 'a/../../escape.txt', '.ferry-staging/t1.a9/escape']) {
      await rejectsWith(writer.stage({ name, ...bytes('x') }), 'forbidden');
    }
    await writer.abort();
    assert.deepEqual(await tree(base).then((all) => all.filter((f) => f.includes('escape'))), []);
  });

  it('refuses symlinks that lead outside the root', async () => {
    const src = await freshRoot();
    await put(src, 'ok.txt', 'ok');
    await symlink(path.join(outside, 'secret.txt'), path.join(src, 'leak.txt'));
    await rejectsWith(plan(endpoint(src)), 'forbidden', /leak\.txt resolves to .*outside/);

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
    const partitions = await plan(endpoint(src));
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
});

describe('filesystem stream reads', () => {
  it('fail, retryably, when the file grew, shrank or was rewritten while it was read', async () => {
    const src = await freshRoot();
    const data = Buffer.alloc(700_000, 7); // three reads of 256 KiB, then the end
    const changes: [string, (path: string) => Promise<void>][] = [
      ['grew.bin', (path) => appendFile(path, 'more')],
      ['shrank.bin', (path) => truncate(path, 10)],
      ['rewritten.bin', (path) => writeFile(path, Buffer.alloc(data.length, 8))],
    ];
    for (const [name] of changes) await put(src, name, data);
    await put(src, 'kept.bin', data);
    const [partition] = await plan(endpoint(src));
    for await (const object of filesystemSource.read(endpoint(src), partition!, attempt('t1', 'a1'))) {
      const change = changes.find(([name]) => name === object.name)?.[1];
      const chunks = object.stream[Symbol.asyncIterator]();
      const first = await chunks.next();
      assert.equal(first.done, false);
      // File times have a clock tick's resolution: the change must land in a later tick.
      await sleep(20);
      await change?.(path.join(src, object.name));
      const rest = (async () => {
        let n = (first.value as Buffer).length;
        for (let next = await chunks.next(); !next.done; next = await chunks.next()) {
          n += (next.value as Buffer).length;
        }
        return n;
      })();
      if (!change) {
        assert.equal(await rest, data.length, object.name);
        continue;
      }
      const err = await rejectsWith(rest, 'store_error', /changed while it was read/);
      assert.equal(err.retryable, true);
      assert.match(err.message, new RegExp(`${object.name} changed`));
    }
  });
});

describe('filesystem direct reads', () => {
  it("reads a file at any position into the caller's buffer, without touching its stream", async () => {
    const src = await freshRoot();
    const data = Buffer.from(Array.from({ length: 300_000 }, (_, i) => i % 251));
    await put(src, 'a.bin', data);
    const [partition] = await plan(endpoint(src));
    const [object] = await collect(filesystemSource.read(endpoint(src), partition!, attempt('t1', 'a1')));
    const direct = object!.direct!;
    assert.equal(direct.size, data.length);
    // Pieces read at once, out of order, by read and reread alike.
    const into = Buffer.alloc(data.length + 10);
    const starts = Array.from({ length: Math.ceil(data.length / 70_000) }, (_, i) => i * 70_000).reverse();
    const got = await Promise.all(
      starts.map((at, i) => {
        const length = Math.min(70_000, into.length - at);
        return i % 2 ? direct.reread(into, at, length, at) : direct.read(into, at, length, at);
      }),
    );
    assert.equal(
      got.reduce((a, b) => a + b),
      data.length,
    );
    assert.ok(into.subarray(0, data.length).equals(data));
    assert.equal(await direct.read(into, 0, 10, data.length), 0);
    await direct.unchanged();
    object!.stream.destroy();
    await once(object!.stream, 'close');
    await rejectsWith(direct.read(into, 0, 10, 0), 'cancelled', /"in": .*read/);
  });

  it('keeps a file open past its stream for whoever keeps it, and closes it when the last lets go', async () => {
    const src = await freshRoot();
    const data = Buffer.from('kept for the commit');
    await put(src, 'k.txt', data);
    const [partition] = await plan(endpoint(src));
    const openFiles = async (): Promise<number> => (await readdir('/proc/self/fd')).length;
    const before = await openFiles();
    const [object] = await collect(filesystemSource.read(endpoint(src), partition!, attempt('t1', 'a1')));
    const direct = object!.direct!;
    assert.equal(await openFiles(), before + 1);
    const first = direct.keep!();
    const second = direct.keep!();
    object!.stream.destroy();
    await once(object!.stream, 'close');
    const into = Buffer.alloc(data.length);
    assert.equal(await direct.reread(into, 0, data.length, 0), data.length);
    assert.ok(into.equals(data));
    await direct.unchanged();
    first();
    first(); // a second call of one release counts once
    assert.equal(await direct.reread(into, 0, 1, 0), 1, 'still kept by the other');
    second();
    await rejectsWith(direct.reread(into, 0, 1, 0), 'cancelled', /"in": .*read/);
    // The handle's close is asynchronous.
    for (let i = 0; i < 50 && (await openFiles()) !== before; i++) await sleep(10);
    assert.equal(await openFiles(), before, 'the file is closed');
  });

  it('says a file changed when it grew, shrank or was rewritten after it was opened', async () => {
    const src = await freshRoot();
    const data = Buffer.alloc(5000, 7);
    const changes: [string, (path: string) => Promise<void>][] = [
      ['grew.bin', (path) => appendFile(path, 'more')],
      ['shrank.bin', (path) => truncate(path, 10)],
      // Same size, new content and time.
      ['rewritten.bin', (path) => writeFile(path, Buffer.alloc(5000, 8))],
    ];
    for (const [name] of changes) await put(src, name, data);
    const [partition] = await plan(endpoint(src));
    for await (const object of filesystemSource.read(endpoint(src), partition!, attempt('t1', 'a1'))) {
      const change = changes.find(([name]) => name === object.name)![1];
      await object.direct!.unchanged();
      // File times have a clock tick's resolution: the change must land in a later tick.
      await new Promise((resolve) => setTimeout(resolve, 20));
      await change(path.join(src, object.name));
      const err = await rejectsWith(object.direct!.unchanged(), 'store_error', /changed while it was read/);
      assert.equal(err.retryable, true);
      object.stream.destroy();
    }
  });
});

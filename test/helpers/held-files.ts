/**
 * The checks every object-store sink that holds small files until commit (HeldFile,
 * src/connectors/object-store/held-file.ts) passes: a small file its source can keep open is kept, read
 * (counted) only at commit, when its sha256 becomes known, and let go; a larger one is staged at
 * once; nothing shows before commit; a file changed since it was opened fails the commit and
 * publishes nothing; abort lets every file go.
 * What a store checks beyond that (how the object was sent) goes in `inspect`.
 */
import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { it } from 'node:test';
import { FerryError } from '../../src/common/errors.ts';
import type { SinkWriter, StagedObject } from '../../src/connectors/connector.ts';
import { WHOLE_READ_BELOW } from '../../src/connectors/object-store/range-pairs.ts';
import { directOf, type TestDirect } from './direct-reads.ts';
import { rejectsWith } from './rejects-with.ts';

export interface HeldFilePlace {
  /** A writer for attempt `attemptId` of task `taskId`, into this place. */
  open(taskId: string, attemptId: string): Promise<SinkWriter>;
  /** The names published in the place, sorted. */
  names(): Promise<string[]>;
  content(name: string): Promise<Buffer>;
  /** The store's own look at a published object that was held (put whole) or not. */
  inspect(name: string, held: boolean): Promise<void>;
}

export const keepable = (data: Buffer): TestDirect => directOf(data, data.length, {}, { keepable: true });

export function heldFileChecks(fresh: () => Promise<HeldFilePlace>): void {
  it('holds a small file its source keeps open and reads and puts it whole at commit; a larger one is staged at once', async () => {
    const place = await fresh();
    const writer = await place.open('t1', 'a1');
    const cases: [string, Buffer, boolean][] = [
      ['small.bin', randomBytes(3000), true],
      ['under-whole-limit.bin', randomBytes(WHOLE_READ_BELOW - 1), true],
      ['empty.bin', Buffer.alloc(0), true],
      ['whole-limit.bin', randomBytes(WHOLE_READ_BELOW), false],
    ];
    const directs = new Map<string, TestDirect>();
    const staged = new Map<string, StagedObject>();
    const sha256 = (data: Buffer): string => createHash('sha256').update(data).digest('hex');
    for (const [name, data, held] of cases) {
      const direct = keepable(data);
      directs.set(name, direct);
      const object = await writer.stageDirect!(name, direct);
      staged.set(name, object);
      // A held file is not read yet: its sha256 comes with the commit.
      assert.deepEqual(object, { name, bytes: data.length, sha256: held ? '' : sha256(data) });
      assert.equal(direct.counted.read, held ? 0 : data.length, name);
      assert.equal(direct.kept.taken, held ? 1 : 0, `${name} kept open`);
    }
    assert.deepEqual(await place.names(), [], 'nothing before commit');
    await writer.commit();
    for (const [name, data, held] of cases) {
      const direct = directs.get(name)!;
      assert.ok((await place.content(name)).equals(data), `${name} is what was read`);
      await place.inspect(name, held);
      assert.equal(staged.get(name)!.sha256, sha256(data), `${name} sha256 after the commit`);
      // Every file is read once, counted; a larger one once more, uncounted, for its hash.
      assert.equal(direct.counted.read, data.length, name);
      assert.equal(direct.counted.reread, held ? 0 : data.length, name);
      assert.equal(direct.kept.released, direct.kept.taken, `${name} let go`);
    }
  });

  it('fails the commit of a held file that changed since it was opened, publishing nothing, and lets it go', async () => {
    const place = await fresh();
    const writer = await place.open('t1', 'a1');
    const direct = keepable(randomBytes(3000));
    await writer.stageDirect!('moving.bin', direct);
    // What the filesystem source says of a file written to since it was opened (size or time).
    direct.unchanged = async () => {
      throw new FerryError('store_error', 'files "in": moving.bin changed while it was read (read)', {
        retryable: true,
      });
    };
    const err = await rejectsWith(writer.commit(), 'store_error', /moving\.bin changed while it was read/);
    assert.equal(err.retryable, true);
    await writer.abort();
    assert.deepEqual(await place.names(), []);
    assert.equal(direct.kept.released, 1);
  });

  it('fails the commit when a held file cannot be read then, publishing it nowhere, and lets it go', async () => {
    const place = await fresh();
    const writer = await place.open('t1', 'a1');
    const data = randomBytes(3000);
    const direct = directOf(data, data.length, { at: 1000, in: 'read' }, { keepable: true });
    await writer.stageDirect!('unreadable.bin', direct);
    await rejectsWith(writer.commit(), 'store_error', /disk on fire/);
    await writer.abort();
    assert.deepEqual(await place.names(), []);
    assert.deepEqual(direct.kept, { taken: 1, released: 1 });
  });

  it('lets every held file go on abort, and an aborted attempt publishes none', async () => {
    const place = await fresh();
    const writer = await place.open('t1', 'a1');
    const directs = [1, 2, 3].map((i) => keepable(randomBytes(i * 1000)));
    for (const [i, direct] of directs.entries()) await writer.stageDirect!(`f${i}.bin`, direct);
    await writer.abort();
    await rejectsWith(writer.commit(), 'conflict', /is aborted \(commit\)$/);
    assert.deepEqual(await place.names(), []);
    assert.deepEqual(
      directs.map((d) => d.kept),
      directs.map(() => ({ taken: 1, released: 1 })),
    );
  });
}

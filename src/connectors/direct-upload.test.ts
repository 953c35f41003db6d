import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { Readable, Writable } from 'node:stream';
import { describe, it } from 'node:test';
import { directOf } from '../../test/helpers/direct-reads.ts';
import { rejectsWith } from '../../test/helpers/rejects-with.ts';
import { FerryError } from '../common/errors.ts';
import {
  BufferPool,
  HeldFile,
  PartUploads,
  WHOLE_READ_BELOW,
  partSizeFor,
  uploadDirect,
  uploadStream,
  type PartBody,
} from './direct-upload.ts';

const message = (text: string): string => `test "out": f.bin ${text} (commit)`;
const signal = new AbortController().signal;

describe('HeldFile', () => {
  it('holds only a small file its source can keep, reading nothing until it is published', () => {
    const data = randomBytes(1000);
    const direct = directOf(data, data.length, {}, { keepable: true });
    const held = HeldFile.hold(direct, message);
    assert.ok(held);
    assert.equal(held.size, data.length);
    assert.equal(held.sha256, '');
    assert.deepEqual(direct.counted, { read: 0, reread: 0 });
    assert.deepEqual(direct.kept, { taken: 1, released: 0 });
    held.release();
    held.release();
    assert.deepEqual(direct.kept, { taken: 1, released: 1 }, 'release is idempotent');

    assert.equal(HeldFile.hold(directOf(data, data.length), message), undefined, 'not keepable');
    const big = randomBytes(WHOLE_READ_BELOW);
    assert.equal(HeldFile.hold(directOf(big, big.length, {}, { keepable: true }), message), undefined);
  });

  it('reads the file once, counted, at its publish; a second publish rereads it and sends the same bytes', async () => {
    const data = randomBytes(5000);
    const direct = directOf(data, data.length, {}, { keepable: true });
    const held = HeldFile.hold(direct, message)!;
    const sent: Buffer[] = [];
    const send = async (body: Buffer): Promise<void> => {
      sent.push(Buffer.from(body)); // the body sits in a pooled buffer, given back after send
    };
    await held.publish(signal, send);
    assert.equal(held.sha256, createHash('sha256').update(data).digest('hex'));
    assert.deepEqual(direct.counted, { read: data.length, reread: 0 });
    await held.publish(signal, send);
    assert.deepEqual(direct.counted, { read: data.length, reread: data.length });
    assert.ok(sent.length === 2 && sent.every((b) => b.equals(data)));
    held.release();
    await assert.rejects(held.publish(signal, send), /after release/);
  });

  it('sends nothing on a second publish when the bytes are no longer those sent first', async () => {
    const data = randomBytes(5000);
    const held = HeldFile.hold(directOf(data, data.length, {}, { keepable: true }), message)!;
    let sends = 0;
    const send = async (): Promise<void> => {
      sends++;
    };
    await held.publish(signal, send);
    const first = held.sha256;
    data[7] = data[7]! ^ 0xff; // same size, other bytes
    const err = await rejectsWith(
      held.publish(signal, send),
      'store_error',
      /f\.bin changed while it was committed/,
    );
    assert.equal(err.retryable, true);
    assert.equal(sends, 1);
    assert.equal(held.sha256, first, 'the sha256 stays that of what was sent');
    held.release();
  });

  it('fails its publish, sending nothing, when the file is no longer the size it was opened with', async () => {
    const data = randomBytes(5000);
    // Opened at 6000 bytes: it has shrunk since.
    const held = HeldFile.hold(directOf(data, 6000, {}, { keepable: true }), message)!;
    let sends = 0;
    await rejectsWith(
      held.publish(signal, async () => {
        sends++;
      }),
      'store_error',
      /changed while it was read/,
    );
    assert.equal(sends, 0);
    held.release();
  });
});

const MiB = 1024 * 1024;
const GiB = 1024 * MiB;

/** A part's bytes, as a request would send them: its buffer, or its body piped to the end. */
async function bytesOf(part: PartBody): Promise<Buffer> {
  if ('buffer' in part) return Buffer.from(part.buffer);
  const chunks: Buffer[] = [];
  await new Promise<void>((resolve, reject) => {
    const sink = new Writable({
      write(chunk: Buffer, _enc, cb) {
        chunks.push(Buffer.from(chunk));
        cb();
      },
    });
    sink.on('finish', resolve).on('error', reject);
    part.body().pipe(sink);
  });
  return Buffer.concat(chunks);
}

describe('part sizes and counts', () => {
  const s3 = { maxParts: 10_000, maxPartSize: 5 * GiB };
  const stageMessage = (text: string): string => `test "out": f.bin ${text} (stage)`;

  it("keeps the sink's part size while the store's part count holds the file, and grows it in whole MiB past that", () => {
    assert.equal(partSizeFor(0, 8 * MiB, s3, stageMessage), 8 * MiB);
    assert.equal(partSizeFor(10_000 * 8 * MiB, 8 * MiB, s3, stageMessage), 8 * MiB);
    assert.equal(partSizeFor(10_000 * 8 * MiB + 1, 8 * MiB, s3, stageMessage), 9 * MiB);
    // 100 GiB in 10,000 parts: 10.24 MiB each, so 11 MiB (9,310 parts).
    assert.equal(partSizeFor(100 * GiB, 8 * MiB, s3, stageMessage), 11 * MiB);
    // 5 TiB, S3's largest object: 524.288 MiB, so 525 MiB.
    assert.equal(partSizeFor(5 * 1024 * GiB, 8 * MiB, s3, stageMessage), 525 * MiB);
    const azure = { maxParts: 50_000, maxPartSize: 4000 * MiB };
    assert.equal(partSizeFor(800 * GiB, 16 * MiB, azure, stageMessage), 17 * MiB);
  });

  it('refuses, before anything is sent, a file no parts of the largest size can hold', () => {
    assert.throws(
      () => partSizeFor(10_000 * 5 * GiB + 1, 8 * MiB, s3, stageMessage),
      (err: unknown) =>
        err instanceof FerryError &&
        err.code === 'store_error' &&
        !err.retryable &&
        err.message ===
          'test "out": f.bin is 53687091200001 bytes, more than the store takes in one object (10000 parts of at most 5120 MiB) (stage)',
    );
  });

  it('sends a file the part count would not hold in larger equal parts, every byte once, in order', async () => {
    const data = randomBytes(3 * MiB + 5);
    const direct = directOf(data, data.length);
    const sent = new Map<number, Buffer>();
    const hash = createHash('sha256');
    const stage = new AbortController();
    const size = await uploadDirect({
      direct,
      partSize: MiB,
      limits: { maxParts: 2, maxPartSize: 8 * MiB },
      uploads: new PartUploads(),
      hash,
      signal: stage.signal,
      stop: (err) => stage.abort(err),
      message: stageMessage,
      send: async (index, part, length) => {
        const bytes = await bytesOf(part);
        assert.equal(bytes.length, length);
        sent.set(index, bytes);
      },
    });
    assert.equal(size, data.length);
    assert.deepEqual(
      [...sent.keys()].sort().map((i) => sent.get(i)!.length),
      [2 * MiB, MiB + 5],
    );
    assert.ok(Buffer.concat([sent.get(0)!, sent.get(1)!]).equals(data));
    assert.equal(direct.counted.read, data.length, 'every byte read once, counted');
    assert.equal(hash.digest('hex'), createHash('sha256').update(data).digest('hex'));
  });

  it('fails a stream that outgrows the part count, with the store named, and gives every buffer back', async () => {
    const pool = new BufferPool(2, MiB);
    const stage = new AbortController();
    const chunks = Array.from({ length: 5 }, () => randomBytes(MiB));
    let sends = 0;
    const err = await rejectsWith(
      uploadStream({
        stream: Readable.from(chunks),
        pool,
        partSize: MiB,
        limits: { maxParts: 2, maxPartSize: 8 * MiB },
        limit: 2,
        uploads: new PartUploads(),
        hash: createHash('sha256'),
        signal: stage.signal,
        message: stageMessage,
        send: async () => {
          sends++;
        },
      }),
      'store_error',
      /^test "out": f\.bin is larger than 2 parts of 1 MiB, the most the store takes of an object sent as a stream \(stage\)$/,
    );
    assert.equal(err.retryable, false, 'the same object fails the same way again');
    assert.equal(sends, 2);
    // Both buffers are free again: two takes at once do not wait.
    const taken = await Promise.all([pool.take(stage.signal), pool.take(stage.signal)]);
    for (const b of taken) pool.give(b);
  });
});

import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { Readable } from 'node:stream';
import { describe, it } from 'node:test';
import { rejectsWith } from '../../../test/helpers/rejects-with.ts';
import { BufferPool } from '../../common/buffer-pool.ts';
import { MiB, PartUploads } from './part-uploads.ts';
import { uploadStream } from './stream-upload.ts';

const stageMessage = (text: string): string => `test "out": f.bin ${text} (stage)`;

describe('uploadStream', () => {
  it('fails a stream that outgrows the part count, with the store named, and gives every buffer back', async () => {
    const pool = new BufferPool({ count: 2, size: MiB });
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

import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { Writable } from 'node:stream';
import { describe, it } from 'node:test';
import { directOf } from '../../../test/helpers/direct-reads.ts';
import { MiB, PartUploads, type PartBody } from './part-uploads.ts';
import { uploadDirect } from './range-upload.ts';
import { UploadBudget } from '../../common/upload-budget.ts';

const stageMessage = (text: string): string => `test "out": f.bin ${text} (stage)`;

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

describe('uploadDirect', () => {
  it('sends a file the part count would not hold in larger equal parts, every byte once, in order', async () => {
    const data = randomBytes(3 * MiB + 5);
    const direct = directOf(data, data.length);
    const sent = new Map<number, Buffer>();
    const hash = createHash('sha256');
    const stage = new AbortController();
    const size = await uploadDirect({
      direct,
      budget: new UploadBudget(),
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
});

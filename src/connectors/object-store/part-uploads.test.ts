import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { FerryError } from '../../common/errors.ts';
import { MiB, partSizeFor } from './part-uploads.ts';

const GiB = 1024 * MiB;

describe('part sizes', () => {
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
});

import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { describe, it } from 'node:test';
import { directOf } from '../../../test/helpers/direct-reads.ts';
import { rejectsWith } from '../../../test/helpers/rejects-with.ts';
import { HeldFile } from './held-file.ts';
import { WHOLE_READ_BELOW } from './range-pairs.ts';
import { HELD_FILES_MAX, UploadBudget } from '../../common/upload-budget.ts';

const message = (text: string): string => `test "out": f.bin ${text} (commit)`;
const signal = new AbortController().signal;
const budget = new UploadBudget();

describe('HeldFile', () => {
  it('holds only a small file its source can keep, reading nothing until it is published', () => {
    const data = randomBytes(1000);
    const direct = directOf(data, data.length, {}, { keepable: true });
    const held = HeldFile.hold(direct, budget, message);
    assert.ok(held);
    assert.equal(held.size, data.length);
    assert.equal(held.sha256, '');
    assert.deepEqual(direct.counted, { read: 0, reread: 0 });
    assert.deepEqual(direct.kept, { taken: 1, released: 0 });
    held.release();
    held.release();
    assert.deepEqual(direct.kept, { taken: 1, released: 1 }, 'release is idempotent');

    assert.equal(HeldFile.hold(directOf(data, data.length), budget, message), undefined, 'not keepable');
    const big = randomBytes(WHOLE_READ_BELOW);
    assert.equal(
      HeldFile.hold(directOf(big, big.length, {}, { keepable: true }), budget, message),
      undefined,
    );
  });

  it('reads the file once, counted, at its publish; a second publish rereads it and sends the same bytes', async () => {
    const data = randomBytes(5000);
    const direct = directOf(data, data.length, {}, { keepable: true });
    const held = HeldFile.hold(direct, budget, message)!;
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
    const held = HeldFile.hold(directOf(data, data.length, {}, { keepable: true }), budget, message)!;
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
    const held = HeldFile.hold(directOf(data, 6000, {}, { keepable: true }), budget, message)!;
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

  it('holds no file past its budget, and one more once a held one is let go (once)', () => {
    const own = new UploadBudget();
    const small = () => directOf(Buffer.from('x'), 1, {}, { keepable: true });
    const held = Array.from({ length: HELD_FILES_MAX }, () => HeldFile.hold(small(), own, message));
    assert.ok(held.every((h) => h !== undefined));
    const past = small();
    assert.equal(HeldFile.hold(past, own, message), undefined);
    assert.deepEqual(past.kept, { taken: 0, released: 0 }, 'a file past the budget is not kept open');
    held[0]!.release();
    held[0]!.release();
    assert.ok(HeldFile.hold(small(), own, message));
    assert.equal(HeldFile.hold(small(), own, message), undefined);
    for (const h of held) h?.release();
  });
});

/**
 * Looking for a secret where it must not be: a marker value, as is, in hex, and in base64 and
 * base64url at any alignment (what a careless log line, a JSON body or a wire dump would hold).
 */
import assert from 'node:assert/strict';

/** Every way the marker could be written: as is, hex, and base64/base64url at any alignment. */
export function encodings(marker: string): string[] {
  const raw = Buffer.from(marker);
  const out = [marker, raw.toString('hex')];
  for (let shift = 0; shift < 3; shift++) {
    const b64 = Buffer.concat([Buffer.alloc(shift), raw]).toString('base64');
    // Drop the characters that also depend on the bytes around the marker.
    const core = b64.slice(shift === 0 ? 0 : shift + 1, -3);
    out.push(core, core.replaceAll('+', '-').replaceAll('/', '_'));
  }
  return out;
}

/** Fails, naming `where` and the form found, if any marker is in `bytes` in any of its encodings. */
export function assertAbsent(where: string, bytes: Buffer | string, markers: readonly string[]): void {
  const text = typeof bytes === 'string' ? bytes : bytes.toString('latin1');
  for (const marker of markers)
    for (const form of encodings(marker))
      assert.equal(text.includes(form), false, `${where} holds a secret (${form}) in clear`);
}

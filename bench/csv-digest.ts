/**
 * An order-independent fingerprint of the rows in CSV files: how many data lines, the sum of the
 * first field (the id), and two 32-bit sums of a per-line hash. Ferry writes a table as several part
 * files in any order and psql writes one file; the same rows give the same digest either way, while a
 * lost, doubled or altered row changes it. Each file's first line is its header and is skipped.
 *
 * Lines are records: the benchmark tables hold no line breaks inside fields. The hash is two FNV-1a
 * lanes with a final mix, computed byte by byte; reading is the cost (about 1 s per 500 MB).
 */
import { createReadStream } from 'node:fs';
import type { Readable } from 'node:stream';
import { createGunzip } from 'node:zlib';

export interface CsvDigest {
  rows: number;
  idSum: number;
  hash: string;
}

function fmix(h: number): number {
  h ^= h >>> 16;
  h = Math.imul(h, 0x85ebca6b);
  h ^= h >>> 13;
  h = Math.imul(h, 0xc2b2ae35);
  h ^= h >>> 16;
  return h >>> 0;
}

class Digester {
  rows = 0;
  idSum = 0;
  #sumA = 0;
  #sumB = 0;
  // Per line in progress:
  #a = 0x811c9dc5;
  #b = 0x01000193;
  #id = 0;
  #inId = true;
  #empty = true;
  #header = true;

  startFile(): void {
    if (!this.#empty) this.#endLine();
    this.#header = true;
  }

  update(buf: Buffer): void {
    let a = this.#a;
    let b = this.#b;
    let id = this.#id;
    let inId = this.#inId;
    let empty = this.#empty;
    for (let i = 0; i < buf.length; i++) {
      const c = buf[i]!;
      if (c === 10) {
        this.#a = a;
        this.#b = b;
        this.#id = id;
        this.#endLine();
        a = 0x811c9dc5;
        b = 0x01000193;
        id = 0;
        inId = true;
        empty = true;
        continue;
      }
      empty = false;
      a = Math.imul(a ^ c, 0x01000193);
      b = Math.imul(b ^ c, 0x5bd1e995) ^ (b >>> 13);
      if (inId) {
        if (c >= 48 && c <= 57) id = id * 10 + (c - 48);
        else inId = false;
      }
    }
    this.#a = a;
    this.#b = b;
    this.#id = id;
    this.#inId = inId;
    this.#empty = empty;
  }

  finish(): CsvDigest {
    if (!this.#empty) this.#endLine();
    const hex = (n: number): string => (n >>> 0).toString(16).padStart(8, '0');
    return { rows: this.rows, idSum: this.idSum, hash: `${hex(this.#sumA)}${hex(this.#sumB)}` };
  }

  #endLine(): void {
    if (this.#header) {
      this.#header = false;
    } else {
      this.rows++;
      this.idSum += this.#id;
      this.#sumA = (this.#sumA + fmix(this.#a)) >>> 0;
      this.#sumB = (this.#sumB + fmix(this.#b ^ this.#a)) >>> 0;
    }
    this.#a = 0x811c9dc5;
    this.#b = 0x01000193;
    this.#id = 0;
    this.#inId = true;
    this.#empty = true;
  }
}

/** Digest of CSV streams (each with a header line); gzip ones are gunzipped first. */
export async function digestCsvStreams(
  streams: Iterable<() => Readable | Promise<Readable>>,
  gzip = false,
): Promise<CsvDigest> {
  const d = new Digester();
  for (const open of streams) {
    d.startFile();
    const raw = await open();
    const s = gzip ? raw.pipe(createGunzip()) : raw;
    if (gzip) raw.on('error', (err) => s.destroy(err));
    for await (const chunk of s) d.update(chunk as Buffer);
  }
  return d.finish();
}

export function digestCsvFiles(files: readonly string[], gzip = false): Promise<CsvDigest> {
  return digestCsvStreams(
    files.map((f) => () => createReadStream(f, { highWaterMark: 1 << 20 })),
    gzip,
  );
}

export function sameDigest(a: CsvDigest, b: CsvDigest): boolean {
  return a.rows === b.rows && a.idSum === b.idSum && a.hash === b.hash;
}

/**
 * Checks each output's digest against the table (rows, id sum) and against the first output checked
 * (line hash), so every contender must have written exactly the same lines.
 */
export class CsvChecker {
  #reference: CsvDigest | undefined;
  readonly #table: { rows: number; idSum: number };
  constructor(table: { rows: number; idSum: number }) {
    this.#table = table;
  }
  check(who: string, d: CsvDigest): CsvDigest {
    if (d.rows !== this.#table.rows || d.idSum !== this.#table.idSum)
      throw new Error(
        `${who}: wrong output: ${d.rows} rows, id sum ${d.idSum}; the table has ${this.#table.rows}, ${this.#table.idSum}`,
      );
    if (this.#reference && !sameDigest(d, this.#reference))
      throw new Error(`${who}: wrong output: line hash ${d.hash} differs from ${this.#reference.hash}`);
    this.#reference ??= d;
    return d;
  }
}

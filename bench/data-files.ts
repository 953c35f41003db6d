/**
 * Source files for the file benchmarks, made quickly: one random 16 MiB block written over and over,
 * each copy stamped with its position, so no two blocks of a file (or two files) are the same and a
 * block written twice or in the wrong place changes the file's md5, at disk speed rather than at the
 * speed of a random generator.
 */
import { createHash, randomBytes } from 'node:crypto';
import { createReadStream, mkdirSync, readdirSync, statSync } from 'node:fs';
import { open } from 'node:fs/promises';
import { dirname, join, relative } from 'node:path';

const BLOCK = 16 * 1024 * 1024;
let pattern: Buffer | undefined;

/** Writes `bytes` of stamped random data to `file`; `seed` makes files of the same size differ. */
export async function writeDataFile(file: string, bytes: number, seed: number): Promise<void> {
  pattern ??= randomBytes(BLOCK);
  mkdirSync(dirname(file), { recursive: true });
  const fh = await open(file, 'w');
  try {
    const block = Buffer.from(pattern);
    for (let offset = 0, i = 0; offset < bytes; offset += BLOCK, i++) {
      block.writeDoubleLE(seed, 0);
      block.writeDoubleLE(i, 8);
      const n = Math.min(BLOCK, bytes - offset);
      await fh.write(block, 0, n, offset);
    }
  } finally {
    await fh.close();
  }
}

export interface FileDigest {
  size: number;
  md5: string;
}

export async function md5File(file: string): Promise<string> {
  const hash = createHash('md5');
  for await (const chunk of createReadStream(file, { highWaterMark: 1 << 20 })) hash.update(chunk as Buffer);
  return hash.digest('hex');
}

/** Every file below `dir`: relative path ('/'-separated) -> size and md5. Hidden entries skipped. */
export async function digestTree(dir: string): Promise<Map<string, FileDigest>> {
  const out = new Map<string, FileDigest>();
  const walk = async (d: string): Promise<void> => {
    for (const name of readdirSync(d).sort()) {
      if (name.startsWith('.')) continue;
      const p = join(d, name);
      const st = statSync(p);
      if (st.isDirectory()) await walk(p);
      else out.set(relative(dir, p).split('\\').join('/'), { size: st.size, md5: await md5File(p) });
    }
  };
  await walk(dir);
  return out;
}

/**
 * Shared by the benchmarks: a context that stops everything started (like a test's), statistics, and
 * writing results to bench/results/NAME.json. See BENCHMARKS.md for the rules.
 */
import { mkdirSync, readFileSync, statfsSync, writeFileSync } from 'node:fs';
import { cpus, tmpdir, totalmem } from 'node:os';
import { join } from 'node:path';
import { ROOT } from '../test/helpers/cluster.ts';

export class BenchContext {
  readonly #cleanups: (() => unknown)[] = [];
  after(fn: () => unknown): void {
    this.#cleanups.push(fn);
  }
  async close(): Promise<void> {
    for (const fn of this.#cleanups.reverse()) await fn();
  }
}

export function percentile(values: number[], p: number): number {
  if (values.length === 0) return NaN;
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.ceil((p / 100) * sorted.length) - 1)] ?? NaN;
}

export function median(values: number[]): number {
  return percentile(values, 50);
}

export function machine(): { cores: number; memoryGiB: number; date: string } {
  return {
    cores: cpus().length,
    memoryGiB: Math.round(totalmem() / 2 ** 30),
    date: new Date().toISOString().slice(0, 10),
  };
}

/**
 * Settings that make a run unlike the published one: smaller data, fewer rounds, an untuned peer, a
 * profiler. Such a run writes its results to the temp folder, and leaves bench/results and the
 * README's table alone.
 */
const NON_STANDARD = [
  'BENCH_ROWS',
  'BENCH_FILE_GIB',
  'BENCH_SMALL_FILES',
  'BENCH_BIG_MIB',
  'BENCH_SETS',
  'BENCH_MEMORY_SETS',
  'BENCH_WARMUPS',
  'BENCH_TUNE',
  'BENCH_NODE_OPTIONS',
  'BENCH_NODE_ARGS',
  'BENCH_PARTITIONS',
  'BENCH_TASKS',
  'BENCH_SINGLE_RUNS',
  'BENCH_ROUNDS',
  'BENCH_PROFILE',
];

/** The non-standard settings of this run (empty for a run worth publishing). */
export function nonStandardSettings(): string[] {
  const set = NON_STANDARD.filter((k) => process.env[k] !== undefined);
  if (Number(process.env['BENCH_RUNS'] ?? 3) < 3) set.push('BENCH_RUNS < 3');
  if (process.env['NODE_OPTIONS']?.includes('--cpu-prof')) set.push('NODE_OPTIONS=--cpu-prof');
  return set;
}

export function writeResult(name: string, result: unknown): string {
  const dir = nonStandardSettings().length > 0 ? tmpdir() : join(ROOT, 'bench', 'results');
  mkdirSync(dir, { recursive: true });
  const file = join(dir, `${name}.json`);
  writeFileSync(file, `${JSON.stringify({ name, machine: machine(), ...(result as object) }, null, 2)}\n`);
  return file;
}

/** Peak RSS of a process so far (VmHWM), in bytes. */
export function peakRss(pid: number): number {
  try {
    const m = /VmHWM:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
    return m?.[1] ? Number(m[1]) * 1024 : 0;
  } catch {
    return 0;
  }
}

/** Fails early when the disk holding `path` has less than `bytes` free (big files are made there). */
export function requireFreeDisk(path: string, bytes: number): void {
  const s = statfsSync(path);
  const free = s.bavail * s.bsize;
  if (free < bytes)
    throw new Error(
      `${path} has ${Math.round(free / 2 ** 30)} GiB free; this benchmark needs ${Math.round(bytes / 2 ** 30)} GiB`,
    );
}

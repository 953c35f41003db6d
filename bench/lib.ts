/**
 * Shared by the benchmarks: a context that stops everything started (like a test's), statistics, and
 * writing results to bench/results/NAME.json. See BENCHMARKS.md for the rules.
 */
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { cpus, totalmem } from 'node:os';
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

export function writeResult(name: string, result: unknown): string {
  const dir = join(ROOT, 'bench', 'results');
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

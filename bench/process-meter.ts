/**
 * What a set of named processes (Ferry's nodes, its service, Azurite) cost over one measured run:
 * peak resident memory and CPU time. The CPU split shows where a run's time went on a machine of two
 * cores: a process near 100% of a core is the bottleneck.
 *
 * Peak RSS: the kernel keeps each process's high-water mark (VmHWM); writing 5 to /proc/PID/clear_refs
 * resets it to the current RSS, so every run reports its own peak rather than the largest since the
 * process started. VmRSS is also sampled every 100 ms; where clear_refs is refused, the sampled peak
 * is the one reported (it can miss a short spike).
 * CPU: utime + stime from /proc/PID/stat, in clock ticks (100 per second on Linux).
 */
import { readFileSync, writeFileSync } from 'node:fs';

const TICKS_PER_SECOND = 100;

function statusKb(pid: number, field: 'VmHWM' | 'VmRSS'): number {
  try {
    const m = new RegExp(`${field}:\\s+(\\d+) kB`).exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
    return m?.[1] ? Number(m[1]) * 1024 : 0;
  } catch {
    return 0;
  }
}

/** utime + stime of a process, and cutime + cstime of its children it has reaped, in seconds. */
export function cpuSeconds(pid: number): { own: number; children: number } {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    // Fields after the command name (which may hold spaces), so counted from its closing parenthesis.
    const f = stat
      .slice(stat.lastIndexOf(')') + 2)
      .split(' ')
      .map(Number);
    return {
      own: ((f[11] ?? 0) + (f[12] ?? 0)) / TICKS_PER_SECOND,
      children: ((f[13] ?? 0) + (f[14] ?? 0)) / TICKS_PER_SECOND,
    };
  } catch {
    return { own: 0, children: 0 };
  }
}

/** A process's descendants (its converter processes, say), from /proc/PID/task/TID/children. */
function descendants(pid: number): number[] {
  const out: number[] = [];
  const walk = (p: number): void => {
    let kids: number[];
    try {
      kids = readFileSync(`/proc/${p}/task/${p}/children`, 'utf8').split(' ').filter(Boolean).map(Number);
    } catch {
      return;
    }
    for (const k of kids) {
      out.push(k);
      walk(k);
    }
  };
  walk(pid);
  return out;
}

export interface ProcessReport {
  /** Largest peak RSS among the processes named in `rssOf`, in bytes. */
  peakRssBytes: number;
  /**
   * Largest sampled RSS of one of the `rssOf` processes together with its child processes (Ferry's
   * Parquet converters), in bytes: what the copy really holds on that machine.
   */
  peakTreeRssBytes: number;
  /** Peak RSS per process, in bytes. */
  rss: Record<string, number>;
  /**
   * CPU seconds per process over the run; `NAME children` for its child processes (Parquet
   * converters): those that ended, and those still running (a converter kept for the next job).
   */
  cpu: Record<string, number>;
  rssMethod: 'VmHWM' | 'sampled VmRSS';
}

export class ProcessMeter {
  readonly #procs: Record<string, number>;
  readonly #rssOf: readonly string[];
  readonly #sampled = new Map<string, number>();
  readonly #cpuAtStart = new Map<string, { own: number; children: number }>();
  /** Per process: the CPU its descendants alive at the start had used by then, by pid. */
  readonly #descendantsAtStart = new Map<string, Map<number, number>>();
  readonly #treeSampled = new Map<string, number>();
  #resetWorked = true;
  #timer: NodeJS.Timeout | undefined;

  /** `procs`: name -> pid; `rssOf`: the names whose peak counts (Ferry's nodes). */
  constructor(procs: Record<string, number>, rssOf: readonly string[]) {
    this.#procs = procs;
    this.#rssOf = rssOf;
  }

  start(): void {
    for (const [name, pid] of Object.entries(this.#procs)) {
      try {
        writeFileSync(`/proc/${pid}/clear_refs`, '5');
      } catch {
        this.#resetWorked = false;
      }
      this.#sampled.set(name, statusKb(pid, 'VmRSS'));
      this.#cpuAtStart.set(name, cpuSeconds(pid));
      this.#descendantsAtStart.set(name, new Map(descendants(pid).map((d) => [d, cpuSeconds(d).own])));
    }
    this.#timer = setInterval(() => this.#sample(), 100);
    this.#timer.unref();
  }

  stop(): ProcessReport {
    clearInterval(this.#timer);
    this.#sample();
    const rss: Record<string, number> = {};
    const cpu: Record<string, number> = {};
    const round = (x: number): number => Math.round(x * 100) / 100;
    for (const [name, pid] of Object.entries(this.#procs)) {
      const sampled = this.#sampled.get(name) ?? 0;
      rss[name] = this.#resetWorked ? Math.max(statusKb(pid, 'VmHWM'), sampled) : sampled;
      const now = cpuSeconds(pid);
      const then = this.#cpuAtStart.get(name) ?? { own: 0, children: 0 };
      cpu[name] = round(now.own - then.own);
      // Ended children count through their reaped time (less what they had used before the start),
      // running ones through their own.
      const before = this.#descendantsAtStart.get(name) ?? new Map<number, number>();
      const live = descendants(pid);
      let children = now.children - then.children;
      for (const [d, used] of before) if (!live.includes(d)) children -= used;
      for (const d of live) children += cpuSeconds(d).own - (before.get(d) ?? 0);
      if (children > 0.005) cpu[`${name} children`] = round(children);
    }
    return {
      peakRssBytes: Math.max(0, ...this.#rssOf.map((n) => rss[n] ?? 0)),
      peakTreeRssBytes: Math.max(
        0,
        ...this.#rssOf.map((n) => Math.max(rss[n] ?? 0, this.#treeSampled.get(n) ?? 0)),
      ),
      rss,
      cpu,
      rssMethod: this.#resetWorked ? 'VmHWM' : 'sampled VmRSS',
    };
  }

  #sample(): void {
    for (const [name, pid] of Object.entries(this.#procs)) {
      const own = statusKb(pid, 'VmRSS');
      this.#sampled.set(name, Math.max(this.#sampled.get(name) ?? 0, own));
      if (this.#rssOf.includes(name)) {
        const tree = descendants(pid).reduce((a, p) => a + statusKb(p, 'VmRSS'), own);
        this.#treeSampled.set(name, Math.max(this.#treeSampled.get(name) ?? 0, tree));
      }
    }
  }
}

/** Runs `fn` with a meter over `procs` (the peer's side of a round: the store's emulator). */
export async function metered<T>(
  procs: Record<string, number>,
  fn: () => Promise<T>,
): Promise<{ value: T; report: ProcessReport }> {
  const meter = new ProcessMeter(procs, []);
  meter.start();
  try {
    const value = await fn();
    return { value, report: meter.stop() };
  } catch (err) {
    meter.stop();
    throw err;
  }
}

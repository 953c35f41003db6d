/**
 * The machine's CPU, memory and network figures for heartbeats, from /proc (Linux) with `os` as the
 * fallback. Rates are deltas between two samples, so the first sample reports zero.
 */
import { cpus, freemem, totalmem } from 'node:os';
import { readFileSync } from 'node:fs';
import type { MetricsT } from '../protocol/agent.ts';

interface Sample {
  at: number;
  cpuBusy: number;
  cpuTotal: number;
  rx: number;
  tx: number;
}

function readCpu(): { busy: number; total: number } {
  let busy = 0;
  let total = 0;
  for (const c of cpus()) {
    const t = c.times;
    busy += t.user + t.nice + t.sys + t.irq;
    total += t.user + t.nice + t.sys + t.irq + t.idle;
  }
  return { busy, total };
}

/** Bytes in/out over all interfaces but loopback (loopback only if it is all there is). */
function readNet(): { rx: number; tx: number } {
  try {
    const lines = readFileSync('/proc/net/dev', 'utf8').split('\n').slice(2);
    const rows = lines
      .map((l) => l.trim().split(/[:\s]+/))
      .filter((p) => p.length > 9 && p[0])
      .map((p) => ({ name: p[0] ?? '', rx: Number(p[1]), tx: Number(p[9]) }));
    const external = rows.filter((r) => r.name !== 'lo');
    const use = external.length > 0 ? external : rows;
    return { rx: use.reduce((a, r) => a + r.rx, 0), tx: use.reduce((a, r) => a + r.tx, 0) };
  } catch {
    return { rx: 0, tx: 0 };
  }
}

function memAvailable(): number {
  try {
    const m = /MemAvailable:\s+(\d+) kB/.exec(readFileSync('/proc/meminfo', 'utf8'));
    if (m?.[1]) return Number(m[1]) * 1024;
  } catch {
    // not Linux: os.freemem() is the nearest figure
  }
  return freemem();
}

export class HostMetrics {
  #last: Sample | undefined;

  sample(now: number = Date.now()): MetricsT {
    const cpu = readCpu();
    const net = readNet();
    const current: Sample = { at: now, cpuBusy: cpu.busy, cpuTotal: cpu.total, rx: net.rx, tx: net.tx };
    const prev = this.#last;
    this.#last = current;
    const secs = prev ? Math.max(0.001, (now - prev.at) / 1000) : 1;
    const dTotal = prev ? current.cpuTotal - prev.cpuTotal : 0;
    return {
      cpuPercent:
        prev && dTotal > 0 ? Math.round((1000 * (current.cpuBusy - prev.cpuBusy)) / dTotal) / 10 : 0,
      memoryAvailableBytes: memAvailable(),
      memoryTotalBytes: totalmem(),
      networkInBytesPerSec: prev ? Math.max(0, Math.round((current.rx - prev.rx) / secs)) : 0,
      networkOutBytesPerSec: prev ? Math.max(0, Math.round((current.tx - prev.tx) / secs)) : 0,
    };
  }
}

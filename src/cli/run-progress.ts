/**
 * What `ferry pipeline run --wait` shows while a run goes on, from the run's successive progress
 * reads: tasks done of the total (`?` until every plan has finished and the total is final), the
 * share done, tasks running, bytes copied that never go backwards (an attempt lost in a failover
 * takes its bytes out of the service's sum until its retry catches up), the rate over the last
 * reads, an estimate of the time left, and a final line that says how the run ended.
 */
import { bytes } from './output.ts';

export interface RunProgressRead {
  id: string;
  status: string;
  error: string | null;
  progress: {
    tasksTotal: number;
    tasksDone: number;
    tasksFailed: number;
    tasksRunning?: number;
    planned: boolean;
    bytes: number;
  };
}

export interface ProgressLine {
  done: number;
  /** For the bar: at least 1. */
  total: number;
  totalText: string;
  percent: string;
  running: number;
  bytes: string;
  rate: string;
  eta: string;
  status: string;
}

const FINISHED = new Set(['succeeded', 'failed']);
/** The rate is measured over this many seconds of reads. */
const RATE_WINDOW_MS = 10_000;

function duration(ms: number): string {
  const s = Math.round(ms / 1000);
  if (s < 60) return `${s} s`;
  if (s < 3600) return `${Math.floor(s / 60)} min ${s % 60} s`;
  return `${Math.floor(s / 3600)} h ${Math.floor((s % 3600) / 60)} min`;
}

export class RunProgress {
  readonly #startedAt: number;
  #bytes = 0;
  #reads: { at: number; bytes: number; done: number }[] = [];

  constructor(startedAt: number) {
    this.#startedAt = startedAt;
  }

  update(run: RunProgressRead, now: number): ProgressLine {
    const p = run.progress;
    this.#bytes = Math.max(this.#bytes, p.bytes);
    this.#reads.push({ at: now, bytes: this.#bytes, done: p.tasksDone });
    while (this.#reads.length > 2 && now - (this.#reads[0]?.at ?? now) > RATE_WINDOW_MS) this.#reads.shift();
    const first = this.#reads[0];
    const span = first ? (now - first.at) / 1000 : 0;
    const rate = first && span > 0 ? (this.#bytes - first.bytes) / span : 0;
    const finished = FINISHED.has(run.status);
    const left = p.tasksTotal - p.tasksDone;
    // Time left from the pace of tasks so far: only once the total is known and some are done.
    const elapsed = (now - this.#startedAt) / 1000;
    const eta =
      finished || !p.planned || p.tasksDone === 0 || left <= 0
        ? '-'
        : duration((elapsed / p.tasksDone) * left * 1000);
    return {
      done: p.tasksDone,
      total: Math.max(1, p.tasksTotal),
      totalText: p.planned ? String(p.tasksTotal) : '?',
      percent: p.planned && p.tasksTotal > 0 ? `${Math.floor((100 * p.tasksDone) / p.tasksTotal)}%` : '-',
      running: p.tasksRunning ?? 0,
      bytes: bytes(this.#bytes),
      rate: `${bytes(rate)}/s`,
      eta,
      status: finished ? run.status : p.planned ? 'running' : 'planning',
    };
  }

  /** One line saying how the run ended. */
  final(run: RunProgressRead, now: number): string {
    const p = run.progress;
    const took = duration(now - this.#startedAt);
    const copied = `${p.tasksDone - p.tasksFailed}/${p.tasksTotal} tasks, ${bytes(Math.max(this.#bytes, p.bytes))} in ${took}`;
    return run.status === 'succeeded'
      ? `run ${run.id} succeeded: ${copied}`
      : `run ${run.id} ${run.status}: ${copied}${run.error ? `; ${run.error}` : ''}`;
  }
}

/** `ferry pipeline ...` and `ferry run ...` */
import type { Command } from 'commander';
import cliProgress from 'cli-progress';
import { setTimeout as sleep } from 'node:timers/promises';
import { cliContext, type CliContext } from './context.ts';
import { enc } from './api-client.ts';
import { bytes, printFields, printJson, printTable } from './output.ts';
import { readStructuredFile } from '../common/config.ts';
import { RunProgress } from './run-progress.ts';
import { FerryError } from '../common/errors.ts';

interface RunDetail {
  id: string;
  pipeline: string;
  status: string;
  error: string | null;
  createdAt: string;
  finishedAt: string | null;
  progress: {
    tasksTotal: number;
    tasksDone: number;
    tasksFailed: number;
    tasksRunning?: number;
    planned: boolean;
    rows: number;
    bytes: number;
  };
  activities: { name: string; status: string; error: string | null }[];
  tasks: {
    activity: string;
    kind: string;
    index: number;
    status: string;
    node: string | null;
    attempts: number;
    rows: number;
    bytes: number;
    durationMs: number | null;
    error: string | null;
    attemptList: { node: string; status: string; error: string | null }[];
  }[];
}

const FINISHED = new Set(['succeeded', 'failed']);

async function follow(c: CliContext, runId: string): Promise<RunDetail> {
  const bar = new cliProgress.SingleBar(
    {
      format:
        'run {run} [{bar}] {percent} {value}/{totalText} tasks, {running} running | {bytes} at {rate} | ETA {eta} | {status}',
      noTTYOutput: true,
      notTTYSchedule: 2000,
      stream: process.stderr,
      hideCursor: true,
    },
    cliProgress.Presets.shades_classic,
  );
  const progress = new RunProgress(Date.now());
  bar.start(1, 0, {
    run: runId,
    percent: '-',
    totalText: '?',
    running: 0,
    bytes: '0 B',
    rate: '0 B/s',
    eta: '-',
    status: 'planning',
  });
  let last: Omit<RunDetail, 'tasks'> | undefined;
  try {
    for (;;) {
      // Progress only while it runs (cheap for the service); every task once it has finished.
      const run = await c.api.get<Omit<RunDetail, 'tasks'>>(`/api/v1/runs/${enc(runId)}?tasks=false`);
      last = run;
      const line = progress.update(run, Date.now());
      bar.setTotal(line.total);
      bar.update(line.done, { run: runId, ...line });
      if (FINISHED.has(run.status)) return await c.api.get<RunDetail>(`/api/v1/runs/${enc(runId)}`);
      await sleep(500);
    }
  } finally {
    bar.stop();
    if (last) process.stderr.write(`${progress.final(last, Date.now())}\n`);
  }
}

function printRun(run: RunDetail): void {
  printFields([
    ['run', run.id],
    ['pipeline', run.pipeline],
    ['status', run.status],
    ['error', run.error],
    // Counted from the task list (plans and finalizes included), as the run's own error counts them.
    [
      'tasks',
      `${run.tasks.filter((t) => t.status === 'succeeded' || t.status === 'failed').length}/${run.tasks.length} done, ${run.tasks.filter((t) => t.status === 'failed').length} failed`,
    ],
    ['rows', run.progress.rows > 0 ? run.progress.rows : '-'],
    ['bytes', `${run.progress.bytes} (${bytes(run.progress.bytes)})`],
  ]);
  process.stdout.write('\n');
  printTable(
    run.tasks.map((t) => ({
      ...t,
      // Files copied as they are have no rows: `-`, not a count of 0 that reads as nothing copied.
      rows: t.rows > 0 ? t.rows : '-',
      task: `${t.activity}/${t.kind === 'copy' ? t.index : t.kind}`,
      duration: t.durationMs === null ? '-' : `${(t.durationMs / 1000).toFixed(2)} s`,
      history: t.attemptList.length > 1 ? t.attemptList.map((a) => `${a.node}:${a.status}`).join(' ') : '',
    })),
    [
      ['TASK', 'task'],
      ['STATUS', 'status'],
      ['NODE', 'node'],
      ['ATTEMPTS', 'attempts'],
      ['ROWS', 'rows'],
      ['BYTES', 'bytes'],
      ['DURATION', 'duration'],
      ['ERROR', 'error'],
      ['HISTORY', 'history'],
    ],
  );
}

export function pipelineCommands(program: Command): void {
  const p = program.command('pipeline').description('pipelines of copy activities');

  p.command('apply')
    .description('create or update a pipeline from a JSON or YAML file (validated; errors name the field)')
    .requiredOption('-f, --file <file>', 'the pipeline file')
    .action(async (opts: { file: string }, cmd: Command) => {
      const c = cliContext(cmd);
      const res = await c.api.put<{ name: string; version: number; changed: boolean }>(
        '/api/v1/pipelines',
        readStructuredFile(opts.file),
      );
      if (c.json) return printJson(res);
      process.stdout.write(
        `pipeline ${res.name} ${res.changed ? 'applied' : 'unchanged'} (version ${res.version})\n`,
      );
    });

  p.command('list')
    .description('list pipelines: version, number of activities, last update')
    .action(async (_o, cmd: Command) => {
      const c = cliContext(cmd);
      const res = await c.api.get<{
        pipelines: { name: string; version: number; updatedAt: string; spec: { activities: unknown[] } }[];
      }>('/api/v1/pipelines');
      if (c.json) return printJson(res);
      printTable(
        res.pipelines.map((x) => ({ ...x, activities: x.spec.activities.length })),
        [
          ['NAME', 'name'],
          ['VERSION', 'version'],
          ['ACTIVITIES', 'activities'],
          ['UPDATED', 'updatedAt'],
        ],
      );
    });

  p.command('run <name>')
    .description('start a run; with --wait, follow it with a progress bar and exit non-zero if it fails')
    .option('--wait', 'wait for the run to finish')
    .action(async (name: string, opts: { wait?: boolean }, cmd: Command) => {
      const c = cliContext(cmd);
      const started = await c.api.post<RunDetail>(`/api/v1/pipelines/${enc(name)}/runs`);
      if (!opts.wait) {
        if (c.json) return printJson(started);
        process.stdout.write(`${started.id}\n`);
        return;
      }
      const run = await follow(c, started.id);
      if (c.json) printJson(run);
      else printRun(run);
      if (run.status !== 'succeeded')
        throw new FerryError('conflict', `run ${run.id} ${run.status}: ${run.error ?? ''}`);
    });

  p.command('delete <name>')
    .description('delete a pipeline')
    .action(async (name: string, _o, cmd: Command) => {
      const c = cliContext(cmd);
      await c.api.delete(`/api/v1/pipelines/${enc(name)}`);
      if (c.json) return printJson({ deleted: name });
      process.stdout.write(`deleted pipeline ${name}\n`);
    });

  const r = program.command('run').description('pipeline runs');
  r.command('list')
    .description('the 50 latest runs, newest first: pipeline, status, start and end, error')
    .option('--pipeline <name>', 'only this pipeline')
    .action(async (opts: { pipeline?: string }, cmd: Command) => {
      const c = cliContext(cmd);
      const res = await c.api.get<{ runs: Record<string, unknown>[] }>(
        `/api/v1/runs${opts.pipeline ? `?pipeline=${enc(opts.pipeline)}` : ''}`,
      );
      if (c.json) return printJson(res);
      printTable(res.runs, [
        ['RUN', 'id'],
        ['PIPELINE', 'pipeline'],
        ['STATUS', 'status'],
        ['STARTED', 'startedAt'],
        ['FINISHED', 'finishedAt'],
        ['ERROR', 'error'],
      ]);
    });
  r.command('show <runId>')
    .description('a run task by task: the node that ran each, attempts, rows, bytes, duration, status, error')
    .action(async (runId: string, _o, cmd: Command) => {
      const c = cliContext(cmd);
      const run = await c.api.get<RunDetail>(`/api/v1/runs/${enc(runId)}`);
      if (c.json) return printJson(run);
      printRun(run);
    });
}

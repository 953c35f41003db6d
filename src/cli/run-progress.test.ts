import { test } from 'node:test';
import assert from 'node:assert/strict';
import { RunProgress, type RunProgressRead } from './run-progress.ts';

const MiB = 1024 * 1024;

function read(over: Partial<RunProgressRead['progress']>, status = 'running', error: string | null = null) {
  return {
    id: 'run_1',
    status,
    error,
    progress: {
      tasksTotal: 0,
      tasksDone: 0,
      tasksFailed: 0,
      tasksRunning: 0,
      planned: false,
      bytes: 0,
      ...over,
    },
  };
}

test('before the plan has finished the total is unknown, not zero', () => {
  const p = new RunProgress(0);
  const line = p.update(read({ tasksRunning: 1 }), 500);
  assert.equal(line.totalText, '?');
  assert.equal(line.percent, '-');
  assert.equal(line.eta, '-');
  assert.equal(line.status, 'planning');
});

test('tasks running are shown, with the share done, the rate and the time left', () => {
  const p = new RunProgress(0);
  p.update(read({ tasksTotal: 40, planned: true, tasksRunning: 24 }), 1_000);
  const line = p.update(
    read({ tasksTotal: 40, tasksDone: 10, planned: true, tasksRunning: 24, bytes: 50 * MiB }),
    11_000,
  );
  assert.equal(line.totalText, '40');
  assert.equal(line.done, 10);
  assert.equal(line.running, 24);
  assert.equal(line.percent, '25%');
  assert.equal(line.rate, '5.0 MiB/s');
  assert.equal(line.eta, '33 s'); // 10 tasks in 11 s: 30 more in 33 s
  assert.equal(line.status, 'running');
});

test('the bytes shown never go backwards when a lost attempt takes its bytes out of the sum', () => {
  const p = new RunProgress(0);
  assert.equal(p.update(read({ planned: true, tasksTotal: 4, bytes: 84 * MiB }), 1_000).bytes, '84.0 MiB');
  assert.equal(p.update(read({ planned: true, tasksTotal: 4, bytes: 70 * MiB }), 2_000).bytes, '84.0 MiB');
  assert.equal(p.update(read({ planned: true, tasksTotal: 4, bytes: 90 * MiB }), 3_000).bytes, '90.0 MiB');
});

test('a run whose plan failed says failed, not planning, and the final line says how it ended', () => {
  const p = new RunProgress(0);
  const failed = read({ tasksDone: 0 }, 'failed', '1 of 1 tasks failed: no such folder');
  assert.equal(p.update(failed, 2_000).status, 'failed');
  assert.equal(
    p.final(failed, 2_000),
    'run run_1 failed: 0/0 tasks, 0 B in 2 s; 1 of 1 tasks failed: no such folder',
  );
  const ok = read({ tasksTotal: 3, tasksDone: 3, planned: true, bytes: 3 * MiB }, 'succeeded');
  const q = new RunProgress(0);
  q.update(ok, 65_000);
  assert.equal(q.final(ok, 65_000), 'run run_1 succeeded: 3/3 tasks, 3.0 MiB in 1 min 5 s');
});

/**
 * A task whose paths the service would refuse today (stored before it checked them) fails on the
 * node before anything is read or written: no retry (bad_request), the field named.
 */
import { test } from 'node:test';
import { UploadBudget } from '../common/upload-budget.ts';
import assert from 'node:assert/strict';
import { attemptContext, executeTask } from './task-executor.ts';
import type { TaskSpecT } from '../protocol/task.ts';
import { FerryError } from '../common/errors.ts';

const spec = (sinkOptions: Record<string, unknown>, root = '/data/out'): TaskSpecT => ({
  runId: 'run_1',
  activity: 'copy',
  source: { type: 'filesystem', linkedService: 'in', properties: { root: '/data/in' }, options: {} },
  sink: { type: 'filesystem', linkedService: 'out', properties: { root }, options: sinkOptions },
  work: { kind: 'plan' },
});

test('a sink inside .ferry-staging, or a path or root holding a NUL byte, is refused before any work', async () => {
  // The context is never touched: the refusal comes first.
  const ctx = {} as Parameters<typeof executeTask>[1];
  const hooks = {} as Parameters<typeof executeTask>[2];
  for (const [s, want] of [
    [
      spec({ path: 'day1/.ferry-staging' }),
      /^filesystem sink "out": path: day1\/\.ferry-staging is inside a \.ferry-staging folder/,
    ],
    [spec({ path: 'a\u0000b' }), /^filesystem sink "out": path: "a\\u0000b" holds a NUL byte$/],
    [spec({}, '/data/o\u0000ut'), /^filesystem sink "out": root: ".*" holds a NUL byte$/],
  ] as const) {
    await assert.rejects(
      executeTask({ attemptId: 'a1', taskId: 't1', spec: s }, ctx, hooks),
      (err: unknown) => {
        assert.ok(err instanceof FerryError);
        assert.equal(err.code, 'bad_request');
        assert.equal(err.retryable, false);
        assert.match(err.message, want);
        return true;
      },
    );
  }
});

test("the connectors' context is the attempt's: its run, activity, task, and the copy's index and window", () => {
  const node = {
    signal: new AbortController().signal,
    allowedRoots: ['/data'],
    uploadBudget: new UploadBudget(),
  };
  const window = { column: 'id', after: '10', upTo: '20' };
  const copy: TaskSpecT = {
    ...spec({}),
    work: { kind: 'copy', index: 3, partition: { kind: 'files', files: [] }, window },
  };
  assert.deepEqual(attemptContext({ attemptId: 'a7', taskId: 't7', spec: copy }, node), {
    ...node,
    runId: 'run_1',
    activity: 'copy',
    taskId: 't7',
    attemptId: 'a7',
    taskIndex: 3,
    window,
  });
  const plan = attemptContext({ attemptId: 'a1', taskId: 't1', spec: spec({}) }, node);
  assert.deepEqual([plan.taskIndex, 'window' in plan], [0, false]);
});

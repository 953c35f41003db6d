/**
 * The cluster helpers fail a test that leaves processes behind: a child still alive after its
 * process was killed fails the test, and is killed with its group.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { join } from 'node:path';
import { NODE, ROOT, groupMembers } from './helpers/cluster.ts';

test('a test whose process leaves a child behind fails, and the child is killed', () => {
  // A run of its own, not a subtest of this one (the runner tells its children through this).
  const { NODE_TEST_CONTEXT: _inRunner, ...env } = process.env;
  const run = spawnSync(NODE, ['--test', '--test-reporter=spec', join(ROOT, 'test/fixtures/leaky.ts')], {
    cwd: ROOT,
    env,
    encoding: 'utf8',
    timeout: 60_000,
  });
  const out = run.stdout + run.stderr;
  assert.notEqual(run.status, 0, out);
  assert.match(out, /processes still alive 5000 ms after the test: leaky \(pid (\d+)\) left \d+ sleep/);
  const pgid = Number(/leaky \(pid (\d+)\)/.exec(out)?.[1]);
  assert.deepEqual(groupMembers(pgid), [], 'the leftover was killed');
});

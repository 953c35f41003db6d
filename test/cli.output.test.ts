/**
 * The CLI's output reaches a pipe whole, whatever its size: `ferry run show RUN --json` of a run of
 * several hundred tasks (far beyond a pipe's 64 KiB buffer) through a shell pipe to `wc -c`, and
 * through a pipe whose reader starts late.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { join } from 'node:path';
import { MAIN, NODE } from './helpers/cluster.ts';
import { NODE_FLAGS } from '../src/common/runtime-flags.ts';
import { fsLinkedServices, gatewayWithNodes, makeFiles, runPipeline, waitRun } from './helpers/scenario.ts';

/** Runs `ferry ARGS | CONSUMER` in a shell; returns the consumer's stdout and the pipeline's status. */
function throughShellPipe(
  args: string[],
  consumer: string,
): Promise<{ code: number; out: string; err: string }> {
  const quote = (s: string): string => `'${s.replace(/'/g, `'\\''`)}'`;
  const ferry = [NODE, ...NODE_FLAGS, MAIN, ...args].map(quote).join(' ');
  // pipefail is not POSIX sh: check ferry's status by hand.
  const script = `{ ${ferry}; echo "ferry-exit $?" >&2; } | ${consumer}`;
  const child = spawn('sh', ['-c', script], { stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  let err = '';
  child.stdout.on('data', (d: Buffer) => (out += d.toString()));
  child.stderr.on('data', (d: Buffer) => (err += d.toString()));
  return new Promise((resolve) =>
    child.once('close', (code) => {
      const ferryExit = err.match(/ferry-exit (\d+)/)?.[1];
      resolve({ code: code === 0 && ferryExit !== undefined ? Number(ferryExit) : (code ?? -1), out, err });
    }),
  );
}

test('large --json output reaches a pipe whole', async (t) => {
  const g = await gatewayWithNodes(t, 2);
  await fsLinkedServices(g, { in: 'src', out: 'dst' }, { in: 'in', out: 'out' });
  makeFiles(join(g.root, 'in'), '', 400, () => 10);
  const runId = await runPipeline(g, {
    name: 'many',
    activities: [
      { name: 'copy', source: { linkedService: 'src', filesPerTask: 1 }, sink: { linkedService: 'dst' } },
    ],
  });
  const run = await waitRun(g, runId, 120_000);
  assert.equal(run.status, 'succeeded');
  assert.ok(run.tasks.length >= 400, `${run.tasks.length} tasks`);

  const args = ['run', 'show', runId, '--json', '--service', g.svc.url, '--token', g.svc.token];
  const full = await throughShellPipe(args, 'cat');
  assert.equal(full.code, 0, full.err);
  const doc = full.out;
  const expected = `${JSON.stringify(await g.svc.api.call('GET', `/api/v1/runs/${runId}`), null, 2)}\n`;
  const bytes = Buffer.byteLength(expected);
  assert.ok(bytes > 4 * 65536, `the document is ${bytes} bytes: too small to show a cut`);
  assert.equal(Buffer.byteLength(doc), bytes);
  const parsed = JSON.parse(doc);
  assert.equal(parsed.id, runId);
  assert.equal(parsed.tasks.length, run.tasks.length);

  // `| wc -c` counts every byte.
  const counted = await throughShellPipe(args, 'wc -c');
  assert.equal(counted.code, 0, counted.err);
  assert.equal(Number(counted.out.trim().split(/\s+/)[0]), bytes);

  // A reader that starts late still gets everything.
  const late = await throughShellPipe(args, '{ sleep 1; wc -c; }');
  assert.equal(late.code, 0, late.err);
  assert.equal(Number(late.out.trim().split(/\s+/)[0]), bytes);

  // The table too: a header, the run's fields and one line per task.
  const table = await throughShellPipe(
    args.filter((a) => a !== '--json'),
    '{ sleep 1; cat; }',
  );
  assert.equal(table.code, 0, table.err);
  const lines = table.out.trimEnd().split('\n');
  assert.equal(lines.filter((l) => /^copy\/\S+\s+succeeded/.test(l)).length, run.tasks.length);
  // The counts agree with the run's own (plan included), and files copied as they are have no rows.
  assert.match(
    table.out,
    new RegExp(`^tasks\\W+${run.tasks.length}/${run.tasks.length} done, 0 failed$`, 'm'),
  );
  const header = lines.find((l) => l.startsWith('TASK'))?.split(/\s{2,}/) ?? [];
  const copy = lines.find((l) => /^copy\/\d+\s/.test(l))?.split(/\s{2,}/) ?? [];
  assert.equal(
    copy[header.indexOf('ROWS')],
    '-',
    lines.find((l) => /^copy\/\d+\s/.test(l)),
  );
});

/**
 * The README's five-minute tour, run as written: its `sh` blocks, in order, by bash, with only the
 * service's port and the tour's folder changed (so it runs beside other tests). When the tour and
 * the code drift apart, this fails. Whatever the tour started is stopped by the PIDs it recorded.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { existsSync, readFileSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { ROOT, tempDir } from './helpers/cluster.ts';
import { freePort } from './helpers/recording-relay.ts';

const TOUR_TIMEOUT_MS = 240_000;

function tourBlocks(): string[] {
  const readme = readFileSync(join(ROOT, 'README.md'), 'utf8');
  const start = readme.indexOf('## A five-minute tour');
  assert.ok(start >= 0, 'the README has its tour');
  const end = readme.indexOf('\n## ', start + 1);
  return [...readme.slice(start, end).matchAll(/```sh\n([\s\S]*?)```/g)].map((m) => m[1] ?? '');
}

function killRecorded(dir: string): void {
  for (const f of existsSync(dir) ? readdirSync(dir) : []) {
    if (!f.endsWith('.pid')) continue;
    const pid = Number(readFileSync(join(dir, f), 'utf8').trim());
    try {
      if (pid > 0) process.kill(pid, 'SIGKILL');
    } catch {
      /* already gone */
    }
  }
}

test('the README tour runs as written: three nodes, a copy, the dispatcher killed mid-copy, every file once', async (t) => {
  const blocks = tourBlocks();
  assert.ok(blocks.length >= 2, 'the tour has its commands');
  const port = await freePort();
  const dir = tempDir(t, 'ferry-tour-');
  t.after(() => killRecorded(dir));
  const script = blocks.join('\n').replaceAll('8050', String(port)).replaceAll('/tmp/tour', dir);
  assert.ok(script.includes(`--port ${port}`), 'the tour starts its service on the port it names');

  const child = spawn('bash', ['-e', '-o', 'pipefail', '-c', script], {
    cwd: ROOT,
    env: { ...process.env, PATH: `${join(ROOT, 'bin')}:${process.env.PATH ?? ''}` },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let out = '';
  child.stdout.on('data', (d: Buffer) => (out += d.toString()));
  child.stderr.on('data', (d: Buffer) => (out += d.toString()));
  const timer = setTimeout(() => child.kill('SIGKILL'), TOUR_TIMEOUT_MS);
  const code = await new Promise<number | null>((resolve) => child.once('exit', (c) => resolve(c)));
  clearTimeout(timer);

  assert.equal(code, 0, `the tour failed:\n${out.slice(-4000)}`);
  assert.match(out, /^identical$/m, 'every file copied, exactly');
  assert.match(out, /sales/, 'the gateway is shown');
  assert.match(out, /dispatcher/, 'the dispatcher change is explained');
  // The tour stopped what it started: the processes it recorded are gone.
  const pids = readdirSync(dir)
    .filter((f) => f.endsWith('.pid'))
    .map((f) => Number(readFileSync(join(dir, f), 'utf8').trim()));
  assert.equal(pids.length, 4, 'a service and three nodes recorded');
  const alive = (pid: number): boolean => {
    try {
      process.kill(pid, 0);
      return true;
    } catch {
      return false;
    }
  };
  const deadline = Date.now() + 40_000;
  while (pids.some(alive) && Date.now() < deadline) await new Promise((r) => setTimeout(r, 200));
  assert.deepEqual(pids.filter(alive), [], 'every process the tour started has stopped');
});

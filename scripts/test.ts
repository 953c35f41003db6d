/**
 * `npm test`: every unit test (src/**\/*.test.ts, scripts/**\/*.test.ts) and cross-process test
 * (test/**\/*.test.ts) with node's test runner, files in parallel, then one closing line: "N passed,
 * N failed, N skipped".
 * Extra arguments are passed through (e.g. `npm test -- test/failover.dispatcher-kill.test.ts`).
 */
import { spawn } from 'node:child_process';
import { readFileSync, rmSync, globSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

const root = new URL('..', import.meta.url).pathname;
const args = process.argv.slice(2);
const files =
  args.length > 0
    ? args
    : [
        ...globSync('src/**/*.test.ts', { cwd: root }),
        ...globSync('scripts/**/*.test.ts', { cwd: root }),
        ...globSync('test/**/*.test.ts', { cwd: root }),
      ].sort();
const tap = join(tmpdir(), `ferry-test-${process.pid}.tap`);
const concurrency = process.env['FERRY_TEST_CONCURRENCY'] ?? '3';

const child = spawn(
  process.execPath,
  [
    '--test',
    `--test-concurrency=${concurrency}`,
    '--test-timeout=240000',
    '--test-reporter=spec',
    '--test-reporter-destination=stdout',
    '--test-reporter=tap',
    `--test-reporter-destination=${tap}`,
    ...files,
  ],
  // Pool buffers are overwritten when given back, so a chunk used after its release corrupts the
  // tests' output instead of passing unseen (src/common/chunk-pool.ts).
  { cwd: root, stdio: 'inherit', env: { ...process.env, FERRY_POISON_RELEASED: '1' } },
);
const code = await new Promise<number>((resolve) => child.once('exit', (c, s) => resolve(c ?? (s ? 1 : 0))));

let summary: string;
let failed = 0;
try {
  const text = readFileSync(tap, 'utf8');
  const count = (k: string): number => Number(new RegExp(`^# ${k} (\\d+)$`, 'm').exec(text)?.[1] ?? 0);
  failed = count('fail') + count('cancelled');
  summary = `${count('pass')} passed, ${failed} failed, ${count('skipped') + count('todo')} skipped`;
} catch {
  summary = 'test summary unavailable (the runner wrote no TAP report)';
} finally {
  rmSync(tap, { force: true });
}
process.stdout.write(`\n${summary}\n`);
// A file whose process was killed can leave the runner's own exit code at 0: the count decides too.
process.exit(code !== 0 ? code : failed > 0 ? 1 : 0);

/**
 * The peers are outside programs (psql, rclone, pgloader): checked for before any data is made, and
 * run as child processes whose wall time is the measurement.
 */
import { spawn, spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';

const TIME = '/usr/bin/time';
const CPU_MARK = 'FERRY_BENCH_CPU';

/** Debian packages that provide each tool a benchmark runs. */
const PACKAGES: Record<string, string> = {
  psql: 'postgresql-client',
  rclone: 'rclone',
  pgloader: 'pgloader',
  gzip: 'gzip',
  mariadb: 'mariadb-client',
};

/** Fails with the exact install command when a tool is missing. */
export function requireTools(tools: readonly string[]): void {
  const missing = tools.filter((t) => spawnSync('sh', ['-c', `command -v ${t}`]).status !== 0);
  if (missing.length === 0) return;
  const packages = [...new Set(missing.map((t) => PACKAGES[t] ?? t))];
  throw new Error(
    `missing ${missing.join(', ')}: install with\n  apt-get install -y ${packages.join(' ')}\n(as root, or with sudo)`,
  );
}

export interface CommandResult {
  ms: number;
  /** User + system CPU seconds of the command and its children (absent without /usr/bin/time). */
  cpuSeconds?: number;
  stdout: string;
  stderr: string;
}

/**
 * Runs a command to completion (through `bash -o pipefail -c` when given one string, so a failing stage of a pipe fails it) and times it.
 * A non-zero exit is an error carrying what the command printed.
 */
export async function runCommand(
  command: string | readonly string[],
  o: { env?: NodeJS.ProcessEnv; cwd?: string; timeoutMs?: number } = {},
): Promise<CommandResult> {
  const argv = typeof command === 'string' ? ['bash', '-o', 'pipefail', '-c', command] : [...command];
  // GNU time reports the CPU of the command and every child it waited for (a pipe's stages too).
  const timed = existsSync(TIME);
  const [file, ...args] = timed ? [TIME, '-f', `${CPU_MARK} %U %S`, ...argv] : argv;
  if (file === undefined) throw new Error('empty command');
  const started = performance.now();
  const child = spawn(file, args, {
    env: { ...process.env, ...o.env },
    cwd: o.cwd,
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let stdout = '';
  let stderr = '';
  child.stdout.on('data', (d: Buffer) => (stdout = (stdout + d.toString()).slice(-20_000)));
  child.stderr.on('data', (d: Buffer) => (stderr = (stderr + d.toString()).slice(-20_000)));
  const timer = setTimeout(() => child.kill('SIGKILL'), o.timeoutMs ?? 30 * 60_000);
  const code = await new Promise<number | null>((resolve, reject) => {
    child.once('error', reject);
    child.once('exit', (c) => resolve(c));
  });
  clearTimeout(timer);
  const ms = performance.now() - started;
  const shown = typeof command === 'string' ? command : command.join(' ');
  if (code !== 0) throw new Error(`${shown} exited ${code}:\n${stdout.slice(-3000)}\n${stderr.slice(-3000)}`);
  const cpu = new RegExp(`${CPU_MARK} ([\\d.]+) ([\\d.]+)`).exec(stderr);
  return {
    ms,
    stdout,
    stderr: stderr.replace(/^.*FERRY_BENCH_CPU.*$/m, ''),
    ...(cpu ? { cpuSeconds: Number(cpu[1]) + Number(cpu[2]) } : {}),
  };
}

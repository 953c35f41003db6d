/**
 * Installing and starting Ferry the ways people do: `bin/ferry` through a symlink from another
 * folder, `npm install -g` of the clone's path (what `npm link` does), `npx ferry` in the clone,
 * `npm pack` + `npm install -g` of the tarball into a temp prefix (a production install: no dev
 * dependencies, so no node@24, and the portal's build inside); `bin/ferry` and `npm run ferry`
 * choosing a Node 24+ or saying in one line what to install; and `npm start` stopped by a signal to
 * npm's own PID.
 */
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import {
  chmodSync,
  copyFileSync,
  cpSync,
  existsSync,
  mkdirSync,
  readFileSync,
  readdirSync,
  realpathSync,
  symlinkSync,
  writeFileSync,
} from 'node:fs';
import { connect } from 'node:net';
import { dirname, join } from 'node:path';
import { NODE, ROOT, eventually, tempDir } from './helpers/cluster.ts';

type Ctx = Parameters<typeof tempDir>[0];

const VERSION = (JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')) as { version: string }).version;
/** A PATH without the project's node_modules/.bin, as a shell outside npm has. */
const PATH = process.env['PATH'] ?? '/usr/bin:/bin';

interface Ran {
  code: number | null;
  stdout: string;
  stderr: string;
}

/** Runs a command to completion (killed after `timeoutMs`), its output kept. */
function run(
  cmd: string,
  args: string[],
  o: { cwd: string; env?: NodeJS.ProcessEnv; timeoutMs?: number },
): Promise<Ran> {
  const child = spawn(cmd, args, {
    cwd: o.cwd,
    env: { ...process.env, ...o.env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let stdout = '';
  let stderr = '';
  child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
  child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
  const timer = setTimeout(() => child.kill('SIGKILL'), o.timeoutMs ?? 60_000);
  return new Promise((resolve, reject) => {
    child.once('error', reject);
    child.once('exit', (code) => {
      clearTimeout(timer);
      resolve({ code, stdout, stderr });
    });
  });
}

/** A fake `node` that says it is `version` and, run with anything else, prints its arguments. */
function fakeNode(dir: string, version: string, says = 'system-node'): string {
  mkdirSync(dir, { recursive: true });
  const file = join(dir, 'node');
  writeFileSync(
    file,
    `#!/bin/sh\nif [ "$1" = --version ]; then echo ${version}; exit 0; fi\necho ${says} "$@"\n`,
  );
  chmodSync(file, 0o755);
  return file;
}

/** A project folder holding only bin/ferry and package.json (as a production install has them). */
function bareProject(t: Ctx): string {
  const dir = tempDir(t, 'ferry-bare-');
  mkdirSync(join(dir, 'bin'));
  copyFileSync(join(ROOT, 'bin/ferry'), join(dir, 'bin/ferry'));
  chmodSync(join(dir, 'bin/ferry'), 0o755);
  copyFileSync(join(ROOT, 'package.json'), join(dir, 'package.json'));
  return dir;
}

const NPM_NETWORK = /ENOTFOUND|EAI_AGAIN|ECONNREFUSED|ETIMEDOUT|ENETUNREACH|ENOTCACHED|network/;

describe('bin/ferry finds the project through symlinks', () => {
  test('a symlink from another folder, and a relative symlink to that symlink', async (t) => {
    const dir = tempDir(t, 'ferry-link-');
    symlinkSync(join(ROOT, 'bin/ferry'), join(dir, 'ferry'));
    mkdirSync(join(dir, 'sub'));
    symlinkSync('../ferry', join(dir, 'sub', 'ferry-again'));
    for (const link of [join(dir, 'ferry'), join(dir, 'sub', 'ferry-again')]) {
      const r = await run(link, ['--version'], { cwd: dir });
      assert.equal(r.code, 0, `${link}: ${r.stderr}`);
      assert.equal(r.stdout.trim(), VERSION);
    }
  });

  test('npm install -g of the clone (what `npm link` does) into a temp prefix, and `npx ferry` in the clone', async (t) => {
    const prefix = tempDir(t, 'ferry-prefix-');
    const inst = await run(
      'npm',
      ['install', '-g', '--prefix', prefix, '--offline', '--no-audit', '--no-fund', ROOT],
      {
        cwd: prefix,
      },
    );
    assert.equal(inst.code, 0, inst.stderr);
    const r = await run(join(prefix, 'bin/ferry'), ['--version'], { cwd: prefix });
    assert.equal(r.code, 0, r.stderr);
    assert.equal(r.stdout.trim(), VERSION);

    const x = await run('npx', ['--offline', 'ferry', '--version'], { cwd: ROOT });
    assert.equal(x.code, 0, x.stderr);
    assert.equal(x.stdout.trim(), VERSION);
  });
});

describe('bin/ferry and npm run ferry pick a Node 24+', () => {
  test('the node on the PATH when it is 24 or newer, else the project one, else one line saying what to install', async (t) => {
    const project = bareProject(t);
    const ferry = join(project, 'bin/ferry');
    const v24 = join(tempDir(t, 'ferry-fake24-'), 'bin');
    const v20 = join(tempDir(t, 'ferry-fake20-'), 'bin');
    fakeNode(v24, 'v24.0.0');
    fakeNode(v20, 'v20.20.2');
    const main = join(project, 'src/cli/main.ts');

    // A Node 24 on the PATH is used, with the runtime flags.
    let r = await run(ferry, ['--version'], { cwd: project, env: { PATH: `${v24}:${PATH}` } });
    assert.equal(r.code, 0, r.stderr);
    assert.equal(r.stdout.trim(), `system-node --max-semi-space-size=4 ${main} --version`);

    // Node 20 and no project node: one line, exit 1, nothing run.
    r = await run(ferry, ['--version'], { cwd: project, env: { PATH: `${v20}:${PATH}` } });
    assert.equal(r.code, 1);
    assert.equal(r.stdout, '');
    const lines = r.stderr.trim().split('\n');
    assert.equal(lines.length, 1, r.stderr);
    assert.match(
      lines[0] ?? '',
      /^ferry: needs Node\.js 24 or newer \(found: v20\.20\.2 at .*\/node\); install Node 24\+/,
    );

    // No node at all on the PATH.
    r = await run('/bin/sh', [ferry, '--version'], { cwd: project, env: { PATH: join(project, 'none') } });
    assert.equal(r.code, 1);
    assert.match(r.stderr, /^ferry: needs Node\.js 24 or newer \(found: none on the PATH\)/);

    // Node 20 on the PATH but the project has its own node (the node@24 dev dependency): that one.
    fakeNode(join(project, 'node_modules/.bin'), 'v24.21.0', 'project-node');
    r = await run(ferry, ['--version'], { cwd: project, env: { PATH: `${v20}:${PATH}` } });
    assert.equal(r.code, 0, r.stderr);
    assert.equal(r.stdout.trim(), `project-node --max-semi-space-size=4 ${main} --version`);
  });

  test('npm run ferry without dev dependencies: Node 24+ from the PATH, or the one line', async (t) => {
    const project = bareProject(t);
    const v24 = join(tempDir(t, 'ferry-fake24-'), 'bin');
    const v20 = join(tempDir(t, 'ferry-fake20-'), 'bin');
    fakeNode(v24, 'v24.0.0');
    fakeNode(v20, 'v20.20.2');
    // npm itself runs on this test's Node; the script's `node` is whatever its PATH gives.
    const npmCli = realpathSync(
      execFileSync('/bin/sh', ['-c', 'command -v npm'], { encoding: 'utf8' }).trim(),
    );
    const runNpm = (path: string): Promise<Ran> =>
      run(process.execPath, [npmCli, 'run', '--silent', 'ferry', '--', '--version'], {
        cwd: project,
        env: { PATH: path },
      });
    let r = await runNpm(`${v24}:${PATH}`);
    assert.equal(r.code, 0, r.stderr);
    assert.equal(
      r.stdout.trim(),
      `system-node --max-semi-space-size=4 ${join(project, 'src/cli/main.ts')} --version`,
    );
    r = await runNpm(`${v20}:${PATH}`);
    assert.notEqual(r.code, 0);
    assert.doesNotMatch(r.stdout, /system-node/, 'Node 20 never ran the CLI');
    assert.match(r.stderr, /ferry: needs Node\.js 24 or newer \(found: v20\.20\.2/);
  });

  test("npm ci --omit=dev in a copy of the clone (offline, from npm's cache): the PATH's Node 24+, or the one line", async (t) => {
    const dir = tempDir(t, 'ferry-prod-');
    for (const f of ['bin', 'src', 'package.json', 'package-lock.json'])
      cpSync(join(ROOT, f), join(dir, f), { recursive: true });
    const ci = await run(
      'npm',
      ['ci', '--omit=dev', '--offline', '--ignore-scripts', '--no-audit', '--no-fund'],
      {
        cwd: dir,
        timeoutMs: 300_000,
      },
    );
    if (ci.code !== 0 && NPM_NETWORK.test(ci.stderr)) {
      t.skip(`npm's cache lacks some package of the lock file: ${ci.stderr.split('\n')[0]}`);
      return;
    }
    assert.equal(ci.code, 0, ci.stderr);
    assert.ok(!existsSync(join(dir, 'node_modules/.bin/node')), 'no node@24');
    const v20 = join(tempDir(t, 'ferry-fake20-'), 'bin');
    fakeNode(v20, 'v20.20.2');
    const npmCli = realpathSync(
      execFileSync('/bin/sh', ['-c', 'command -v npm'], { encoding: 'utf8' }).trim(),
    );

    // An old Node on the PATH: bin/ferry and npm run ferry say what to install, and run nothing.
    const old = await run(join(dir, 'bin/ferry'), ['--version'], {
      cwd: dir,
      env: { PATH: `${v20}:${PATH}` },
    });
    assert.equal(old.code, 1);
    assert.match(old.stderr, /^ferry: needs Node\.js 24 or newer \(found: v20\.20\.2/);
    const oldNpm = await run(process.execPath, [npmCli, 'run', '--silent', 'ferry', '--', '--version'], {
      cwd: dir,
      env: { PATH: `${v20}:${PATH}` },
    });
    assert.notEqual(oldNpm.code, 0);
    assert.match(oldNpm.stderr, /ferry: needs Node\.js 24 or newer/);

    // Node 24 on the PATH: npm run ferry and npm start work.
    const env = { PATH: `${dirname(NODE)}:${PATH}` };
    const v = await run(process.execPath, [npmCli, 'run', '--silent', 'ferry', '--', '--version'], {
      cwd: dir,
      env,
    });
    assert.equal(v.code, 0, v.stderr);
    assert.equal(v.stdout.trim(), VERSION);
    const start = spawn(process.execPath, [npmCli, 'start', '--', '--port', '0', '--node-port', '0'], {
      cwd: dir,
      env: { ...process.env, ...env },
      stdio: ['ignore', 'pipe', 'pipe'],
      detached: true,
    });
    t.after(() => {
      try {
        process.kill(-(start.pid ?? 0), 'SIGKILL');
      } catch {
        // all gone
      }
    });
    const out = await outputUntil(start, /Ferry is up\.[\s\S]*on port \d+\n/);
    const api = /API:\s+(http:\/\/[\d.:]+)/.exec(out)?.[1];
    assert.equal((await fetch(`${api}/healthz`)).status, 200);
    process.kill(start.pid ?? 0, 'SIGTERM');
    assert.equal((await exitOf(start)).code, 0);
  });

  test('npm pack, then npm install -g of the tarball into a temp prefix (no dev dependencies)', async (t) => {
    const dir = tempDir(t, 'ferry-pack-');
    const pack = await run('npm', ['pack', '--pack-destination', dir, '--silent'], { cwd: ROOT });
    assert.equal(pack.code, 0, pack.stderr);
    const tarball = join(dir, pack.stdout.trim().split('\n').pop() ?? '');
    const prefix = join(dir, 'prefix');
    // Offline from npm's cache when it holds every package; else the registry.
    const inst = await run(
      'npm',
      [
        'install',
        '-g',
        '--prefix',
        prefix,
        '--prefer-offline',
        '--ignore-scripts',
        '--no-audit',
        '--no-fund',
        tarball,
      ],
      { cwd: dir, timeoutMs: 300_000 },
    );
    if (inst.code !== 0 && NPM_NETWORK.test(inst.stderr)) {
      t.skip(
        `npm install of the tarball needs the npm registry for its dependencies: ${inst.stderr.split('\n')[0]}`,
      );
      return;
    }
    assert.equal(inst.code, 0, inst.stderr);
    const installed = join(prefix, 'lib/node_modules/ferry');
    assert.ok(
      !readdirSync(join(installed, 'node_modules')).includes('node'),
      'no node@24: dev dependencies left out',
    );
    const ferry = join(prefix, 'bin/ferry');

    // With only an old Node on the PATH: the one line.
    const v20 = join(tempDir(t, 'ferry-fake20-'), 'bin');
    fakeNode(v20, 'v20.20.2');
    const old = await run(ferry, ['--version'], { cwd: dir, env: { PATH: `${v20}:${PATH}` } });
    assert.equal(old.code, 1);
    assert.match(old.stderr, /^ferry: needs Node\.js 24 or newer/);

    // With a Node 24 on the PATH: the installed copy runs, service and node included.
    const env = { PATH: `${dirname(NODE)}:${PATH}` };
    const v = await run(ferry, ['--version'], { cwd: dir, env });
    assert.equal(v.code, 0, v.stderr);
    assert.equal(v.stdout.trim(), VERSION);
    const up = spawn(ferry, ['up', '--port', '0', '--node-port', '0', '--data-dir', join(dir, 'data')], {
      cwd: dir,
      env: { ...process.env, ...env },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    t.after(() => {
      if (up.exitCode === null && up.signalCode === null) up.kill('SIGKILL');
    });
    const out = await outputUntil(up, /Ferry is up\.[\s\S]*on port \d+\n/);
    const api = /API:\s+(http:\/\/[\d.:]+)/.exec(out)?.[1];
    const health = await fetch(`${api}/healthz`);
    assert.equal(health.status, 200);
    // The tarball carries the portal's build (package.json "files": web/dist/), and `ferry up` says where.
    assert.match(out, /portal:\s+http:\/\/[\d.:]+\//);
    const portal = await fetch(`${api}/`);
    assert.equal(portal.status, 200);
    assert.match(await portal.text(), /<div id="root"><\/div>/);
    up.kill('SIGTERM');
    assert.equal((await exitOf(up)).code, 0);
  });
});

/** Collects a child's stdout until it matches `re` (fails if the child exits first). */
function outputUntil(child: ChildProcess, re: RegExp, timeoutMs = 60_000): Promise<string> {
  let out = '';
  let err = '';
  return new Promise((resolve, reject) => {
    const timer = setTimeout(
      () => reject(new Error(`no ${re} within ${timeoutMs} ms:\n${out}\n${err.slice(-3000)}`)),
      timeoutMs,
    );
    child.stderr?.on('data', (d: Buffer) => (err += d.toString()));
    child.stdout?.on('data', (d: Buffer) => {
      out += d.toString();
      if (re.test(out)) {
        clearTimeout(timer);
        resolve(out);
      }
    });
    child.once('exit', (code, signal) => {
      clearTimeout(timer);
      reject(new Error(`exited (${code ?? signal}) before printing ${re}:\n${out}\n${err.slice(-3000)}`));
    });
  });
}

function exitOf(child: ChildProcess): Promise<{ code: number | null; signal: NodeJS.Signals | null }> {
  if (child.exitCode !== null || child.signalCode !== null)
    return Promise.resolve({ code: child.exitCode, signal: child.signalCode });
  return new Promise((resolve) => child.once('exit', (code, signal) => resolve({ code, signal })));
}

/** Every live descendant of `pid` (from /proc). */
function descendants(pid: number): number[] {
  const parent = new Map<number, number>();
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      const stat = readFileSync(`/proc/${entry}/stat`, 'utf8');
      // pid (comm) state ppid ...: comm may hold spaces and parentheses, so read after the last ')'.
      const ppid = Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]);
      parent.set(Number(entry), ppid);
    } catch {
      // gone meanwhile
    }
  }
  const out: number[] = [];
  const walk = (p: number): void => {
    for (const [child, pp] of parent) {
      if (pp === p) {
        out.push(child);
        walk(child);
      }
    }
  };
  walk(pid);
  return out;
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
  } catch {
    return false;
  }
  // A zombie is gone for our purpose (exited, waiting to be reaped).
  try {
    return !/^\S+ \(.*\) Z/.test(readFileSync(`/proc/${pid}/stat`, 'utf8'));
  } catch {
    return false;
  }
}

function refused(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const s = connect({ host: '127.0.0.1', port });
    s.once('connect', () => {
      s.destroy();
      resolve(false);
    });
    s.once('error', () => resolve(true));
  });
}

describe('npm start is stopped by a signal to npm', () => {
  const cases = [
    { signal: 'SIGTERM', to: "npm's PID", group: false },
    { signal: 'SIGINT', to: "npm's PID", group: false },
    // A terminal's Ctrl-C: Ferry gets it from the terminal and again from npm; one drain, not a kill.
    { signal: 'SIGINT', to: "npm's process group (a terminal's Ctrl-C)", group: true },
  ] as const;
  for (const { signal, to, group } of cases) {
    test(`${signal} to ${to} drains and stops Ferry: no process left, both ports free`, async (t) => {
      const data = tempDir(t, 'ferry-start-');
      // Its own process group, so that whatever the test leaves is killed at the end.
      const npm = spawn('npm', ['start', '--', '--port', '0', '--node-port', '0', '--data-dir', data], {
        cwd: ROOT,
        env: { ...process.env, PATH },
        stdio: ['ignore', 'pipe', 'pipe'],
        detached: true,
      });
      const pid = npm.pid ?? -1;
      t.after(() => {
        try {
          process.kill(-pid, 'SIGKILL');
        } catch {
          // all gone
        }
      });
      let logs = '';
      npm.stderr.on('data', (d: Buffer) => (logs += d.toString()));
      const out = await outputUntil(npm, /Ferry is up\.[\s\S]*on port \d+\n/);
      const apiPort = Number(/API:\s+http:\/\/[\d.]+:(\d+)/.exec(out)?.[1]);
      const nodePort = Number(/on port (\d+)\n/.exec(out)?.[1]);
      const children = descendants(pid);
      assert.ok(children.length > 0, 'npm runs Ferry in a child process');
      assert.equal(await refused(apiPort), false, 'the API port is served');
      assert.equal(await refused(nodePort), false, 'the node port is served');

      process.kill(group ? -pid : pid, signal);
      const exit = await Promise.race([
        exitOf(npm),
        new Promise<never>((_, reject) =>
          setTimeout(
            () => reject(new Error(`npm still running 60 s after ${signal}:\n${logs.slice(-3000)}`)),
            60_000,
          ),
        ),
      ]);
      assert.equal(exit.code, 0, `npm exited ${exit.code ?? exit.signal}:\n${logs.slice(-3000)}`);
      await eventually('every child of npm gone', () => children.every((c) => !alive(c)), 10_000);
      assert.match(logs, /"msg":"draining before shutdown"/, 'the node drained');
      assert.equal(await refused(apiPort), true, 'the API port is free');
      assert.equal(await refused(nodePort), true, 'the node port is free');
    });
  }
});

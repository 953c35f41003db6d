/**
 * Real processes for cross-process tests: a `ferry service` and `ferry node`s, each its own OS
 * process with its own port and data dir, talking over real sockets. Everything a test starts is
 * registered with the test context and killed when the test ends. Each runs in a process group of
 * its own: anything of that group still alive a few seconds after the kill (a child the process
 * left behind, say a converter it started) fails the test, and is killed then.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import type { TestContext } from 'node:test';
import { NODE_FLAGS } from '../../src/common/runtime-flags.ts';
import { generateNodeKeys } from '../../src/protocol/node-keys.ts';
import { jsonAgents, requestJson, type JsonAgents } from '../../src/node/json-request.ts';

export const ROOT = new URL('../..', import.meta.url).pathname.replace(/\/$/, '');
export const NODE = join(ROOT, 'node_modules/.bin/node');
export const MAIN = join(ROOT, 'src/cli/main.ts');

type Ctx = Pick<TestContext, 'after'>;

const keys = generateNodeKeys();
/** Public keys for registrations and heartbeats a test writes by hand (a node makes its own). */
export const PUBLIC_KEYS = { signPublicKey: keys.signPublicKey, sealPublicKey: keys.sealPublicKey };

/**
 * What one test (or bench) started and made. A single cleanup, registered on first use, kills every
 * process first and only then removes the folders: a live node still writes to its data dir, and an
 * error in one cleanup must not leave the others (and so live processes) undone.
 */
interface Leftovers {
  procs: Proc[];
  dirs: string[];
}

const leftovers = new WeakMap<Ctx, Leftovers>();

function leftoversOf(t: Ctx): Leftovers {
  let l = leftovers.get(t);
  if (!l) {
    const mine: Leftovers = { procs: [], dirs: [] };
    leftovers.set(t, mine);
    t.after(async () => {
      for (const p of mine.procs) p.kill('SIGKILL');
      await Promise.all(mine.procs.map((p) => p.exited));
      const leaked: string[] = [];
      for (const p of mine.procs) {
        const left = await groupGone(p.pid);
        if (left.length === 0) continue;
        leaked.push(`${p.name} (pid ${p.pid}) left ${left.join('; ')}`);
        killGroup(p.pid);
      }
      for (const dir of mine.dirs) rmSync(dir, { recursive: true, force: true, maxRetries: 5 });
      if (leaked.length > 0)
        throw new Error(`processes still alive ${LEAK_GRACE_MS} ms after the test: ${leaked.join(', ')}`);
    });
    l = mine;
  }
  return l;
}

/** How long the children of a killed process get to notice and exit. */
const LEAK_GRACE_MS = 5_000;

/** The live processes of process group `pgid`, as "pid command" (Linux /proc; zombies do not count). */
export function groupMembers(pgid: number): string[] {
  const out: string[] = [];
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      const stat = readFileSync(`/proc/${entry}/stat`, 'utf8');
      // "pid (comm) state ppid pgrp ...": comm may hold spaces and parentheses.
      const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
      if (Number(fields[2]) === pgid && fields[0] !== 'Z')
        out.push(`${entry} ${stat.slice(stat.indexOf('(') + 1, stat.lastIndexOf(')'))}`);
    } catch {
      // gone while we looked
    }
  }
  return out;
}

/** Waits up to LEAK_GRACE_MS for group `pgid` to empty; returns what is still in it. */
async function groupGone(pgid: number): Promise<string[]> {
  if (pgid <= 0) return [];
  const deadline = Date.now() + LEAK_GRACE_MS;
  for (;;) {
    const left = groupMembers(pgid);
    if (left.length === 0 || Date.now() > deadline) return left;
    await sleep(100);
  }
}

function killGroup(pgid: number): void {
  try {
    process.kill(-pgid, 'SIGKILL');
  } catch {
    // already gone
  }
}

export function tempDir(t: Ctx, prefix = 'ferry-test-'): string {
  const dir = mkdtempSync(join(tmpdir(), prefix));
  leftoversOf(t).dirs.push(dir);
  return dir;
}

export class Proc {
  readonly child: ChildProcess;
  readonly name: string;
  output = '';
  readonly exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  #waiters: { re: RegExp; resolve: (m: RegExpMatchArray) => void }[] = [];

  /** Runs `ferry <args>`; `program` replaces `ferry` with other Node.js arguments (a script). */
  constructor(
    name: string,
    args: string[],
    env: NodeJS.ProcessEnv,
    cwd: string,
    program: string[] = [...NODE_FLAGS, MAIN],
  ) {
    this.name = name;
    this.child = spawn(NODE, [...program, ...args], {
      cwd,
      env: { ...process.env, FERRY_LOG_LEVEL: 'info', ...env },
      stdio: ['ignore', 'pipe', 'pipe'],
      // A group of its own, so that what it leaves behind can be found (and the test failed).
      detached: true,
    });
    const onData = (d: Buffer): void => {
      this.output += d.toString();
      this.#waiters = this.#waiters.filter((w) => {
        const m = this.output.match(w.re);
        if (m) w.resolve(m);
        return !m;
      });
    };
    this.child.stdout?.on('data', onData);
    this.child.stderr?.on('data', onData);
    this.exited = new Promise((resolve) =>
      this.child.once('exit', (code, signal) => resolve({ code, signal })),
    );
  }

  get pid(): number {
    return this.child.pid ?? -1;
  }

  get alive(): boolean {
    return this.child.exitCode === null && this.child.signalCode === null;
  }

  /** Resolves when the output matches `re`; fails if the process exits first or time runs out. */
  async waitFor(re: RegExp, timeoutMs = 20_000): Promise<RegExpMatchArray> {
    const now = this.output.match(re);
    if (now) return now;
    // The timeout is disarmed once settled: a pending timer would keep the test process alive.
    const timer = new AbortController();
    try {
      return await Promise.race([
        new Promise<RegExpMatchArray>((resolve) => this.#waiters.push({ re, resolve })),
        this.exited.then(({ code, signal }) => {
          throw new Error(
            `${this.name} exited (${code ?? signal}) before printing ${re}:\n${this.output.slice(-3000)}`,
          );
        }),
        sleep(timeoutMs, undefined, { signal: timer.signal }).then(() => {
          throw new Error(
            `${this.name} did not print ${re} within ${timeoutMs} ms:\n${this.output.slice(-3000)}`,
          );
        }),
      ]);
    } finally {
      timer.abort();
    }
  }

  kill(signal: NodeJS.Signals = 'SIGKILL'): void {
    if (this.alive) this.child.kill(signal);
  }
}

export interface ServiceHandle {
  proc: Proc;
  url: string;
  port: number;
  token: string;
  dataDir: string;
  api: Api;
}

export const ADMIN_TOKEN = 'test-admin-token-0123456789';

export interface ServiceStartOptions {
  dataDir?: string;
  port?: number;
  config?: Record<string, unknown>;
  store?: string;
  storeSchema?: string;
  env?: NodeJS.ProcessEnv;
  /** Serve HTTPS with this certificate; the handle's Api trusts `ca`. */
  tls?: { cert: string; key: string; ca: string };
}

export async function startService(t: Ctx, o: ServiceStartOptions = {}): Promise<ServiceHandle> {
  const dataDir = o.dataDir ?? tempDir(t, 'ferry-svc-');
  const args = ['service', '--port', String(o.port ?? 0), '--data-dir', dataDir];
  if (o.config) {
    const file = join(dataDir, 'service-config.json');
    writeFileSync(file, JSON.stringify(o.config));
    args.push('--config', file);
  }
  if (o.store) args.push('--store', o.store);
  if (o.storeSchema) args.push('--store-schema', o.storeSchema);
  if (o.tls) args.push('--tls-cert', o.tls.cert, '--tls-key', o.tls.key);
  const proc = track(t, new Proc('service', args, { FERRY_ADMIN_TOKEN: ADMIN_TOKEN, ...o.env }, dataDir));
  const m = await proc.waitFor(/listening on (https?:\/\/[\d.]+:(\d+))/);
  const url = m[1] ?? '';
  const api = new Api(url, ADMIN_TOKEN, o.tls ? readFileSync(o.tls.ca) : undefined);
  return { proc, url, port: Number(m[2]), token: ADMIN_TOKEN, dataDir, api };
}

export interface NodeHandle {
  proc: Proc;
  name: string;
  dataDir: string;
}

export interface NodeStartOptions {
  name: string;
  key?: string;
  dataDir?: string;
  allowPaths?: string[];
  extraArgs?: string[];
  env?: NodeJS.ProcessEnv;
  /** Wait until the node reports it is running (default true). */
  wait?: boolean;
}

export async function startNode(t: Ctx, svc: { url: string }, o: NodeStartOptions): Promise<NodeHandle> {
  const dataDir = o.dataDir ?? tempDir(t, `ferry-${o.name}-`);
  const args = [
    'node',
    '--service',
    svc.url,
    '--name',
    o.name,
    '--port',
    '0',
    '--listen',
    '127.0.0.1',
    '--advertise',
    '127.0.0.1',
    '--data-dir',
    dataDir,
  ];
  if (o.key) args.push('--key', o.key);
  for (const p of o.allowPaths ?? []) args.push('--allow-path', p);
  args.push(...(o.extraArgs ?? []));
  const proc = track(t, new Proc(o.name, args, o.env ?? {}, dataDir));
  if (o.wait !== false) await proc.waitFor(/running \(node-to-node port \d+\)/);
  return { proc, name: o.name, dataDir };
}

const CLI_TIMEOUT_MS = 60_000;

/** Runs the CLI to completion: exit code and output. */
export async function cli(
  args: string[],
  env: NodeJS.ProcessEnv = {},
  cwd: string = ROOT,
): Promise<{ code: number | null; stdout: string; stderr: string }> {
  const child = spawn(NODE, [...NODE_FLAGS, MAIN, ...args], {
    cwd,
    env: { ...process.env, ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let stdout = '';
  let stderr = '';
  child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
  child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
  // A CLI call that hangs fails its test with what it printed, instead of stalling the whole file.
  const timer = setTimeout(() => child.kill('SIGKILL'), CLI_TIMEOUT_MS);
  const code = await new Promise<number | null>((resolve) => child.once('exit', (c) => resolve(c)));
  clearTimeout(timer);
  if (code === null)
    throw new Error(
      `ferry ${args.join(' ')} did not finish in ${CLI_TIMEOUT_MS} ms:\n${stdout.slice(-2000)}\n${stderr.slice(-2000)}`,
    );
  return { code, stdout, stderr };
}

/** Registers a process with the test: killed when it ends, and its leftovers fail it. */
export function track(t: Ctx, p: Proc): Proc {
  leftoversOf(t).procs.push(p);
  return p;
}

/** Polls `probe` until it returns a value other than undefined/false; fails after `timeoutMs`. */
export async function eventually<T>(
  what: string,
  probe: () => Promise<T | undefined | false> | T | undefined | false,
  timeoutMs = 20_000,
  everyMs = 100,
): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  let last: unknown;
  for (;;) {
    try {
      const v = await probe();
      if (v !== undefined && v !== false) return v;
    } catch (err) {
      last = err;
    }
    if (Date.now() > deadline)
      throw new Error(`timed out waiting for ${what}${last ? `: ${(last as Error).message}` : ''}`);
    await sleep(everyMs);
  }
}

/** A tiny REST client for tests: JSON in, JSON out, the status kept. */
export class Api {
  readonly url: string;
  readonly token: string | undefined;
  /** HTTPS verified against this CA (through node:https: fetch cannot be given a CA). */
  readonly #agents: JsonAgents | undefined;
  constructor(url: string, token: string | undefined, ca?: Buffer) {
    this.url = url;
    this.token = token;
    this.#agents = ca ? jsonAgents({ maxSockets: 4, ca }) : undefined;
  }

  async raw(
    method: string,
    path: string,
    body?: unknown,
    token = this.token,
  ): Promise<{ status: number; body: any }> {
    if (this.#agents) {
      const r = await requestJson(`${this.url}${path}`, {
        method,
        agents: this.#agents,
        headers: {
          ...(body === undefined ? {} : { 'content-type': 'application/json' }),
          ...(token ? { authorization: `Bearer ${token}` } : {}),
        },
        body: body === undefined ? undefined : JSON.stringify(body),
        timeoutMs: 30_000,
      });
      return { status: r.status, body: r.text ? JSON.parse(r.text) : undefined };
    }
    const res = await fetch(`${this.url}${path}`, {
      method,
      headers: {
        ...(body === undefined ? {} : { 'content-type': 'application/json' }),
        ...(token ? { authorization: `Bearer ${token}` } : {}),
      },
      ...(body === undefined ? {} : { body: JSON.stringify(body) }),
    });
    const text = await res.text();
    return { status: res.status, body: text ? JSON.parse(text) : undefined };
  }

  async call(method: string, path: string, body?: unknown): Promise<any> {
    const r = await this.raw(method, path, body);
    if (r.status >= 400) throw new Error(`${method} ${path} -> ${r.status}: ${JSON.stringify(r.body)}`);
    return r.body;
  }
}

/** The sum of a Prometheus metric's samples at `url`/metrics, over those with the labels given. */
export async function metricSum(
  url: string,
  name: string,
  labels: Record<string, string> = {},
): Promise<number> {
  const text = await (await fetch(`${url}/metrics`)).text();
  let sum = 0;
  for (const line of text.split('\n')) {
    const m = /^(\w+)(?:\{([^}]*)\})? (\S+)$/.exec(line);
    if (!m || m[1] !== name) continue;
    const has = Object.fromEntries([...(m[2] ?? '').matchAll(/(\w+)="([^"]*)"/g)].map((l) => [l[1], l[2]]));
    if (Object.entries(labels).every(([k, v]) => has[k] === v)) sum += Number(m[3]);
  }
  return sum;
}

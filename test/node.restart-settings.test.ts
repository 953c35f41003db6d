/**
 * `ferry node` with real processes: restarted with only `--data-dir`, a node comes back on the port,
 * listen and advertise addresses and under the name it last ran with (kept in node.json); flags given
 * again override them, and are kept in turn. The key may come from `--key-file F` or FERRY_NODE_KEY,
 * so it is not in the process's command line for `ps` to show.
 */
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { hostname } from 'node:os';
import { join } from 'node:path';
import { readLocalStatus } from '../src/node/node-state.ts';
import {
  Proc,
  cli,
  eventually,
  startService,
  tempDir,
  track,
  type ServiceHandle,
} from './helpers/cluster.ts';

type Ctx = Parameters<typeof startService>[0];

async function freePort(): Promise<number> {
  const s = createServer();
  await new Promise<void>((resolve) => s.listen(0, '127.0.0.1', resolve));
  const port = (s.address() as { port: number }).port;
  await new Promise((resolve) => s.close(resolve));
  return port;
}

/** The addresses listening on TCP `port`, from /proc/net/tcp (IPv4): e.g. ['127.0.0.1']. */
function listeningOn(port: number): string[] {
  const hexPort = port.toString(16).toUpperCase().padStart(4, '0');
  const out: string[] = [];
  for (const line of readFileSync('/proc/net/tcp', 'utf8').split('\n').slice(1)) {
    const f = line.trim().split(/\s+/);
    const [addr, p] = (f[1] ?? '').split(':');
    if (p !== hexPort || f[3] !== '0A' || !addr) continue; // 0A: LISTEN
    out.push([3, 2, 1, 0].map((i) => parseInt(addr.slice(i * 2, i * 2 + 2), 16)).join('.'));
  }
  return out;
}

/** Runs `ferry <args>` as a node process and waits for its running line; returns it and its port. */
async function runNode(
  t: Ctx,
  args: string[],
  env: NodeJS.ProcessEnv = {},
): Promise<{ proc: Proc; port: number }> {
  const proc = track(t, new Proc('node', ['node', ...args], env, tempDir(t, 'ferry-cwd-')));
  const m = await proc.waitFor(/running \(node-to-node port (\d+)\)/);
  return { proc, port: Number(m[1]) };
}

async function stop(proc: Proc): Promise<void> {
  proc.kill('SIGTERM');
  const { code } = await proc.exited;
  assert.equal(code, 0, proc.output.slice(-2000));
}

/** The address the node process `pid` advertises, from the status.json it writes each heartbeat. */
function peerUrl(dataDir: string, pid: number): Promise<string> {
  return eventually(`status.json of pid ${pid}`, () => {
    const s = readLocalStatus(dataDir);
    return s?.pid === pid && s.peerUrl;
  });
}

async function gatewayKey(svc: ServiceHandle, name: string): Promise<string> {
  return ((await svc.api.call('POST', '/api/v1/gateways', { name })) as { key1: string }).key1;
}

/** The names the node's log lines carry. */
function loggedNames(output: string): Set<string> {
  return new Set([...output.matchAll(/"name":"ferry-node","node":"([^"]+)"/g)].map((m) => m[1] ?? ''));
}

describe('a node restarted with only its data dir', () => {
  test('keeps its port, listen and advertise addresses and name; flags given again override them', async (t) => {
    const svc = await startService(t);
    const key = await gatewayKey(svc, 'gw-keep');
    const dataDir = tempDir(t, 'ferry-keeper-');
    const port = await freePort();
    // Neither the host name nor the defaults (0.0.0.0, 8060): what it keeps can be told apart.
    assert.notEqual(hostname(), 'localhost');
    const first = await runNode(t, [
      '--service',
      svc.url,
      '--key',
      key,
      '--name',
      'keeper',
      '--port',
      String(port),
      '--listen',
      '127.0.0.1',
      '--advertise',
      'localhost',
      '--data-dir',
      dataDir,
    ]);
    assert.equal(first.port, port);
    await stop(first.proc);

    const again = await runNode(t, ['--data-dir', dataDir]);
    assert.match(again.proc.output, /node keeper of gateway gw-keep running/);
    assert.equal(again.port, port, 'the same port');
    assert.deepEqual(listeningOn(port), ['127.0.0.1'], 'listening on the same address only');
    assert.equal(
      await peerUrl(dataDir, again.proc.pid),
      `http://localhost:${port}`,
      'advertising the same address',
    );
    await again.proc.waitFor(/"msg":"node running"/); // logs are written asynchronously
    assert.deepEqual(
      loggedNames(again.proc.output),
      new Set(['keeper']),
      'logging under its registered name',
    );
    const view = (await svc.api.call('GET', '/api/v1/gateways/gw-keep/nodes')) as {
      nodes: { name: string }[];
    };
    assert.deepEqual(
      view.nodes.map((n) => n.name),
      ['keeper'],
      'still the one node',
    );
    await stop(again.proc);

    // Flags given again win, and are what the next bare restart keeps.
    const other = await freePort();
    const moved = await runNode(t, [
      '--data-dir',
      dataDir,
      '--port',
      String(other),
      '--advertise',
      '127.0.0.1',
    ]);
    assert.equal(moved.port, other);
    assert.equal(await peerUrl(dataDir, moved.proc.pid), `http://127.0.0.1:${other}`);
    assert.deepEqual(listeningOn(other), ['127.0.0.1'], 'the listen address not given is still the kept one');
    await stop(moved.proc);
    const bare = await runNode(t, ['--data-dir', dataDir]);
    assert.equal(bare.port, other);
    assert.equal(await peerUrl(dataDir, bare.proc.pid), `http://127.0.0.1:${other}`);
    await stop(bare.proc);
  });
});

describe('the gateway key without --key', () => {
  test('--key-file F and FERRY_NODE_KEY register a node; the key is not on its command line', async (t) => {
    const svc = await startService(t);
    const key = await gatewayKey(svc, 'gw-keys');
    const dir = tempDir(t, 'ferry-keyfile-');
    const keyFile = join(dir, 'key');
    writeFileSync(keyFile, `${key}\n`, { mode: 0o600 });
    const common = ['--service', svc.url, '--port', '0', '--listen', '127.0.0.1', '--advertise', '127.0.0.1'];

    const fromFile = await runNode(t, [
      ...common,
      '--name',
      'from-file',
      '--key-file',
      keyFile,
      '--data-dir',
      join(dir, 'a'),
    ]);
    const fromEnv = await runNode(t, [...common, '--name', 'from-env', '--data-dir', join(dir, 'b')], {
      FERRY_NODE_KEY: key,
    });
    for (const { proc } of [fromFile, fromEnv]) {
      const cmdline = readFileSync(`/proc/${proc.pid}/cmdline`, 'utf8');
      assert.ok(!cmdline.includes(key), 'the key is not in the command line');
    }
    const view = (await svc.api.call('GET', '/api/v1/gateways/gw-keys/nodes')) as {
      nodes: { name: string }[];
    };
    assert.deepEqual(view.nodes.map((n) => n.name).sort(), ['from-env', 'from-file']);
    await stop(fromFile.proc);
    await stop(fromEnv.proc);
  });

  test('a missing or empty key file, a wrong key in it, and --key with --key-file are refused, saying why', async (t) => {
    const svc = await startService(t);
    const key = await gatewayKey(svc, 'gw-bad-keys');
    const dir = tempDir(t, 'ferry-keyfile-');
    const base = [
      'node',
      '--service',
      svc.url,
      '--port',
      '0',
      '--listen',
      '127.0.0.1',
      '--advertise',
      '127.0.0.1',
    ];
    const empty = join(dir, 'empty');
    writeFileSync(empty, '\n');
    const wrong = join(dir, 'wrong');
    writeFileSync(wrong, 'not-the-key-0123456789\n');

    let r = await cli([
      ...base,
      '--name',
      'n1',
      '--data-dir',
      join(dir, '1'),
      '--key-file',
      join(dir, 'nope'),
    ]);
    assert.equal(r.code, 1);
    assert.match(r.stderr, /^ferry: cannot read the key file .*nope: no such file$/m);
    r = await cli([...base, '--name', 'n2', '--data-dir', join(dir, '2'), '--key-file', empty]);
    assert.equal(r.code, 1);
    assert.match(r.stderr, /^ferry: the key file .*empty is empty$/m);
    r = await cli([...base, '--name', 'n3', '--data-dir', join(dir, '3'), '--key-file', wrong, '--key', key]);
    assert.equal(r.code, 1);
    assert.match(r.stderr, /^ferry: give the key with --key or with --key-file, not both$/m);
    r = await cli([...base, '--name', 'n4', '--data-dir', join(dir, '4'), '--key-file', wrong]);
    assert.equal(r.code, 1);
    assert.match(r.stderr, /^ferry: .*key/im);
    // A flag wins over the environment: --key-file with a wrong key is not rescued by FERRY_NODE_KEY.
    r = await cli([...base, '--name', 'n5', '--data-dir', join(dir, '5'), '--key-file', wrong], {
      FERRY_NODE_KEY: key,
    });
    assert.equal(r.code, 1);
    const view = (await svc.api.call('GET', '/api/v1/gateways/gw-bad-keys/nodes')) as { nodes: unknown[] };
    assert.equal(view.nodes.length, 0, 'no node registered');
  });

  test('--help names --key-file and FERRY_NODE_KEY', async () => {
    const r = await cli(['node', 'run', '--help']);
    assert.equal(r.code, 0);
    assert.match(r.stdout, /--key-file <file>/);
    assert.match(r.stdout, /FERRY_NODE_KEY/);
  });
});

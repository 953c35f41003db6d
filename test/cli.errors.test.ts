/**
 * Errors of the CLI that say what to do: a --service URL without a scheme (instead of the URL
 * parser's "Invalid URL" and a hint to start `ferry up`), and a port already in use at start (with
 * the flag that changes it), and a config file with a misspelt key or a wrong type (naming the file
 * and the key).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createServer, type Server } from 'node:net';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { cli, tempDir } from './helpers/cluster.ts';

const NO_ENV = { FERRY_SERVICE: '', FERRY_TOKEN: '', FERRY_ADMIN_TOKEN: '' };

/** What the CLI said on stderr, without the JSON log lines of a service it started. */
function lines(stderr: string): string[] {
  return stderr
    .trimEnd()
    .split('\n')
    .filter((l) => !l.startsWith('{'));
}

test('a --service URL without a scheme: a clear error and the fix', async (t) => {
  for (const given of ['127.0.0.1:8050', 'localhost:8050']) {
    const res = await cli(['gateway', 'list', '--service', given, '--token', 't'], NO_ENV);
    assert.equal(res.code, 1);
    assert.equal(res.stdout, '');
    assert.deepEqual(lines(res.stderr), [
      `ferry: --service "${given}" is not an http:// or https:// URL (it has no scheme)`,
      `  hint: write it with its scheme: --service http://${given} (https:// if the service serves HTTPS)`,
    ]);
  }
  const env = await cli(['gateway', 'list', '--token', 't'], { ...NO_ENV, FERRY_SERVICE: '127.0.0.1:8050' });
  assert.equal(env.code, 1);
  assert.match(lines(env.stderr)[0] ?? '', /^ferry: FERRY_SERVICE "127\.0\.0\.1:8050" is not an http/);
  assert.match(
    lines(env.stderr)[1] ?? '',
    /hint: write it with its scheme: FERRY_SERVICE=http:\/\/127\.0\.0\.1:8050/,
  );

  const ftp = await cli(['gateway', 'list', '--service', 'ftp://host', '--token', 't'], NO_ENV);
  assert.equal(ftp.code, 1);
  assert.deepEqual(lines(ftp.stderr), [
    'ferry: --service "ftp://host" is not an http:// or https:// URL',
    '  hint: e.g. --service http://127.0.0.1:8050',
  ]);

  // The node says the same.
  const node = await cli(
    ['node', '--service', '127.0.0.1:8050', '--key', 'k', '--data-dir', tempDir(t)],
    NO_ENV,
  );
  assert.equal(node.code, 1);
  assert.match(lines(node.stderr)[0] ?? '', /^ferry: --service "127\.0\.0\.1:8050" is not an http/);
  assert.match(
    lines(node.stderr)[1] ?? '',
    /hint: write it with its scheme: --service http:\/\/127\.0\.0\.1:8050/,
  );
});

async function occupiedPort(t: { after: (fn: () => Promise<void>) => void }): Promise<number> {
  const server: Server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  t.after(() => new Promise<void>((resolve) => server.close(() => resolve())));
  const address = server.address();
  assert.ok(address && typeof address === 'object');
  return address.port;
}

test('a port in use at start: which port, and the flag to change it', async (t) => {
  const port = await occupiedPort(t);
  const dir = tempDir(t);

  const svc = await cli(['service', '--port', String(port), '--data-dir', join(dir, 'svc')], NO_ENV);
  assert.equal(svc.code, 1);
  assert.deepEqual(lines(svc.stderr), [
    `ferry: API port ${port} is already in use on 127.0.0.1`,
    '  hint: pick another --port (0 = any free port), or stop what listens there (another `ferry service` or `ferry up`?)',
  ]);

  const up = await cli(['up', '--port', String(port), '--data-dir', join(dir, 'up1')], NO_ENV, dir);
  assert.equal(up.code, 1);
  assert.match(lines(up.stderr)[0] ?? '', new RegExp(`^ferry: API port ${port} is already in use`));

  // `ferry up`'s own node: its port is --node-port.
  const upNode = await cli(
    ['up', '--port', '0', '--node-port', String(port), '--data-dir', join(dir, 'up2')],
    NO_ENV,
    dir,
  );
  assert.equal(upNode.code, 1, upNode.stdout);
  assert.deepEqual(lines(upNode.stderr), [
    `ferry: node-to-node port ${port} is in use on 127.0.0.1`,
    '  hint: pick another --node-port (0 = any free port), or stop what listens there (another `ferry up` or `ferry node`?)',
  ]);
});

test('a config file with a misspelt key or a wrong type: refused, naming the file and the key', async (t) => {
  const dir = tempDir(t);
  const write = (name: string, text: string): string => {
    const path = join(dir, name);
    writeFileSync(path, text);
    return path;
  };
  const cases = [
    {
      args: ['service', '--port', '0', '--data-dir', join(dir, 'svc')],
      file: write('service-config.yaml', 'port: 0\nheartbeatIntervalMS: 500\n'),
      said: 'heartbeatIntervalMS: is not a known field (did you mean heartbeatIntervalMs?)',
    },
    {
      args: ['service', '--port', '0', '--data-dir', join(dir, 'svc')],
      file: write('service-config.json', '{"auditRetentionDays": "ninety"}'),
      said: 'auditRetentionDays: must be number',
    },
    {
      args: ['node', '--data-dir', join(dir, 'node'), '--service', 'http://127.0.0.1:1', '--key', 'k'],
      file: write('node-config.yaml', 'alowPaths: [/tmp]\n'),
      said: 'alowPaths: is not a known field (did you mean allowPaths?)',
    },
    {
      args: ['node', '--data-dir', join(dir, 'node'), '--service', 'http://127.0.0.1:1', '--key', 'k'],
      file: write('node-config.json', '{"allowPaths": "/tmp"}'),
      said: 'allowPaths: must be array',
    },
  ];
  for (const c of cases) {
    const res = await cli([...c.args, '--config', c.file], NO_ENV);
    assert.equal(res.code, 1, res.stderr);
    assert.equal(lines(res.stderr)[0], `ferry: ${c.file}: ${c.said}`);
  }
});

/**
 * `ferry node backup` / `ferry node restore`: a node's identity, the gateway key and its credential
 * set in a password-protected file, restored into a new data dir (a new machine) where the node runs
 * as the same node, with its credentials, alone in its gateway (so nothing could have been pushed to
 * it): a copy that needs them runs. A wrong password restores nothing; the file is 0600 and does not
 * hold the password it protects a credential with in clear.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { existsSync, readdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { cli, eventually, startNode, tempDir } from './helpers/cluster.ts';
import { gatewayWithNodes, waitRun } from './helpers/scenario.ts';
import { copyItems, mariaLinkedService, mariaWithUser, setPassword } from './helpers/gateway-credentials.ts';

test('a node restored from its backup on a new data dir is the same node, with its credentials', async (t) => {
  const password = `pw-${randomBytes(9).toString('base64url')}`;
  const m = await mariaWithUser(t, password);
  const g = await gatewayWithNodes(t, 2);
  await mariaLinkedService(g, m);
  assert.equal((await setPassword(t, g.svc, password)).code, 0);
  const [n1, n2] = g.nodes;
  assert.ok(n1 && n2);
  const before = (await g.svc.api.call('GET', '/api/v1/gateways/gw/nodes')).nodes;

  const dir = tempDir(t, 'ferry-backup-');
  const file = join(dir, 'node-2.backup');
  const pwFile = join(dir, 'pw');
  writeFileSync(pwFile, 'correct horse battery staple\n', { mode: 0o600 });
  const backup = await cli([
    'node',
    'backup',
    '--data-dir',
    n2.dataDir,
    '-o',
    file,
    '--password-file',
    pwFile,
  ]);
  assert.equal(backup.code, 0, backup.stderr);
  assert.equal(statSync(file).mode & 0o777, 0o600);
  assert.equal(readFileSync(file, 'utf8').includes(password), false);

  // A too short password, and no password at all, are refused before anything is written.
  const short = await cli(['node', 'backup', '--data-dir', n2.dataDir, '-o', join(dir, 'x')], {
    FERRY_BACKUP_PASSWORD: 'short',
  });
  assert.notEqual(short.code, 0);
  assert.match(short.stderr, /at least 8 characters/);
  assert.equal(existsSync(join(dir, 'x')), false);

  // A wrong password: a clear error, and the data dir stays empty.
  const target = tempDir(t, 'ferry-restored-');
  const wrong = await cli(['node', 'restore', '-i', file, '--data-dir', target], {
    FERRY_BACKUP_PASSWORD: 'not the password at all',
  });
  assert.notEqual(wrong.code, 0);
  assert.match(wrong.stderr, /cannot be opened with this password/);
  assert.deepEqual(readdirSync(target), []);
  // A damaged file: the same.
  const damaged = join(dir, 'damaged');
  const parsed = JSON.parse(readFileSync(file, 'utf8'));
  parsed.data = Buffer.from(parsed.data, 'base64').reverse().toString('base64');
  writeFileSync(damaged, JSON.stringify(parsed));
  const bad = await cli(['node', 'restore', '-i', damaged, '--data-dir', target, '--password-file', pwFile]);
  assert.notEqual(bad.code, 0);
  assert.deepEqual(readdirSync(target), []);

  const restored = await cli([
    'node',
    'restore',
    '-i',
    file,
    '--data-dir',
    target,
    '--password-file',
    pwFile,
  ]);
  assert.equal(restored.code, 0, restored.stderr);
  assert.match(restored.stdout, /restored node node-2 of gateway gw/);
  // Restoring over a data dir that holds a node needs --force.
  const again = await cli(['node', 'restore', '-i', file, '--data-dir', target, '--password-file', pwFile]);
  assert.notEqual(again.code, 0);
  assert.match(again.stderr, /already holds a node/);

  // The old machine is gone, and so is node-1: the restored node is alone with what the backup held.
  n2.proc.kill('SIGKILL');
  n1.proc.kill('SIGTERM');
  await n1.proc.exited;
  const back = await startNode(t, g.svc, { name: 'node-2', dataDir: target, allowPaths: [g.root] });
  void back;
  const after = await eventually('node-2 Online again, as dispatcher', async () => {
    const nodes = (await g.svc.api.call('GET', '/api/v1/gateways/gw/nodes')).nodes;
    const n = nodes.find((x: any) => x.name === 'node-2');
    return n?.status === 'Online' && n.role === 'dispatcher' ? nodes : undefined;
  });
  assert.equal(after.length, before.length, 'no new node was registered');
  assert.equal(
    after.find((x: any) => x.name === 'node-2').registeredAt,
    before.find((x: any) => x.name === 'node-2').registeredAt,
    'the same registration',
  );
  assert.deepEqual(after.find((x: any) => x.name === 'node-2').credentials.versions, { maria: 1 });
  const run = await waitRun(g, await copyItems(g, 'restored'));
  assert.equal(run.status, 'succeeded', JSON.stringify(run.error));
  assert.ok(run.tasks.every((tk: any) => tk.node === 'node-2'));
});

/**
 * Gateway-held credentials through failures, across real node processes: the dispatcher killed with
 * kill -9 right after it took a new credential; a node offline while a credential changed (it comes
 * back Limited, catches up, turns Online; `ferry gateway resync-credentials` confirms); and a
 * credential set straight on a node that then dies (the copy fails saying so, until that node is back).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { cli, eventually, startNode } from './helpers/cluster.ts';
import { gatewayWithNodes, waitRun, type Gateway } from './helpers/scenario.ts';
import {
  ROWS,
  copyItems,
  mariaLinkedService,
  mariaWithUser,
  nodesOf,
  setPassword,
} from './helpers/gateway-credentials.ts';

const handle = (g: Gateway, name: string) => {
  const n = g.nodes.find((x) => x.name === name);
  assert.ok(n, name);
  return n;
};

test('kill -9 of the dispatcher right after it took a new credential: the new dispatcher has it and a copy runs', async (t) => {
  const password = `pw-${randomBytes(9).toString('base64url')}`;
  const m = await mariaWithUser(t, password);
  const g = await gatewayWithNodes(t, 3);
  await mariaLinkedService(g, m);
  const set = await setPassword(t, g.svc, password, ['--no-wait']);
  assert.equal(set.code, 0, set.stderr);
  // Killed the moment the service hears it holds the version (its workers may not have it yet).
  const first = await eventually(
    'the dispatcher to hold version 1',
    async () => (await nodesOf(g)).find((n) => n.role === 'dispatcher' && n.credentials.versions.maria === 1),
    20_000,
    20,
  );
  handle(g, first.name).proc.kill('SIGKILL');
  const next = await eventually('another dispatcher', async () =>
    (await nodesOf(g)).find((n) => n.role === 'dispatcher' && n.name !== first.name && n.status === 'Online'),
  );
  await eventually(
    'the nodes up to hold version 1',
    async () =>
      (await nodesOf(g))
        .filter((n) => n.status !== 'Offline')
        .every((n) => n.credentials.versions.maria === 1) || undefined,
  );
  const run = await waitRun(g, await copyItems(g, 'after-failover'));
  assert.equal(run.status, 'succeeded', JSON.stringify(run.error));
  assert.equal(run.progress.rows, ROWS);
  assert.ok(
    run.tasks.every((tk: any) => tk.node !== first.name),
    'nothing ran on the dead node',
  );
  assert.notEqual(next.name, first.name);
});

test('a node offline while a credential changed comes back Limited (credentials out of sync), catches up and turns Online', async (t) => {
  const password = `pw-${randomBytes(9).toString('base64url')}`;
  const m = await mariaWithUser(t, password);
  const g = await gatewayWithNodes(t, 3);
  await mariaLinkedService(g, m);
  assert.equal((await setPassword(t, g.svc, `${password}-old`)).code, 0);
  const n3 = handle(g, 'node-3');
  n3.proc.kill('SIGTERM');
  await n3.proc.exited;
  const changed = await setPassword(t, g.svc, password);
  assert.equal(changed.code, 0, changed.stderr);
  assert.match(changed.stdout, /version 2 .*held by node-1, node-2 \(2 of 2 nodes up\)/);

  const back = await startNode(t, g.svc, { name: 'node-3', dataDir: n3.dataDir, allowPaths: [g.root] });
  await back.proc.waitFor(
    /"status":"Limited","hint":"credentials out of sync: node-3 maria: holds version 1, node-\d holds 2/,
  );
  await back.proc.waitFor(/"msg":"status Online"/);
  const view = (await nodesOf(g)).find((n) => n.name === 'node-3');
  assert.deepEqual(view.credentials, { status: 'in sync', gatewayKey: true, versions: { maria: 2 } });

  const resync = await cli(['gateway', 'resync-credentials', 'gw'], {
    FERRY_SERVICE: g.svc.url,
    FERRY_TOKEN: g.svc.token,
  });
  assert.equal(resync.code, 0, resync.stderr);
  for (const name of ['node-1', 'node-2', 'node-3'])
    assert.match(resync.stdout, new RegExp(`${name}\\s+Online\\s+in sync\\s+maria@2`));
  const run = await waitRun(g, await copyItems(g, 'caught-up'));
  assert.equal(run.status, 'succeeded', JSON.stringify(run.error));
});

test('a credential set straight on a node that then dies: copies fail saying no node up holds it, until that node is back', async (t) => {
  const password = `pw-${randomBytes(9).toString('base64url')}`;
  const m = await mariaWithUser(t, password);
  const g = await gatewayWithNodes(t, 2);
  await mariaLinkedService(g, m);
  await eventually(
    'both nodes hold the gateway key',
    async () => (await nodesOf(g)).every((n) => n.credentials.gatewayKey) || undefined,
  );
  const worker = (await nodesOf(g)).find((n) => n.role === 'worker');
  const set = await setPassword(t, g.svc, password, ['--node', `http://${worker.peerAddress}`, '--no-wait']);
  assert.equal(set.code, 0, set.stderr);
  const w = handle(g, worker.name);
  w.proc.kill('SIGKILL');
  await eventually(`${worker.name} Offline`, async () =>
    (await nodesOf(g)).find((n) => n.name === worker.name && n.status === 'Offline'),
  );
  const dispatcher = (await nodesOf(g)).find((n) => n.role === 'dispatcher');
  assert.deepEqual(dispatcher.credentials.versions, {}, 'the dispatcher never got it');
  const lost = await waitRun(g, await copyItems(g, 'lost'));
  assert.equal(lost.status, 'failed');
  assert.match(lost.error, /no node that is up holds them: set them with `ferry credential set maria`/);

  // The node's disk kept it: back, it is pulled by the dispatcher and copies run again.
  await startNode(t, g.svc, { name: worker.name, dataDir: w.dataDir, allowPaths: [g.root] });
  await eventually(
    'both nodes hold version 1',
    async () =>
      (await nodesOf(g)).every((n) => n.status === 'Online' && n.credentials.versions.maria === 1) ||
      undefined,
  );
  const run = await waitRun(g, await copyItems(g, 'back'));
  assert.equal(run.status, 'succeeded', JSON.stringify(run.error));
});

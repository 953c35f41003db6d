/**
 * Forged credential traffic on the node-to-node port is refused, and changes nothing: a push signed
 * by a node of another gateway; a push from a member of the gateway without the service's lease token for
 * the current epoch; a pull by a node of another gateway; a replayed push. Real node processes; the
 * attacker signs with the real keys of its own node (read from its node.json).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { eventually, startNode, tempDir } from './helpers/cluster.ts';
import { gatewayWithNodes } from './helpers/scenario.ts';
import { copyBoxId, type CredentialPushT } from '../src/protocol/credentials.ts';
import { peerHeaders, signingKey } from '../src/protocol/peer.ts';
import { sealSecrets } from '../src/protocol/sealed-secrets.ts';

interface NodeJson {
  nodeId: string;
  gatewayId: string;
  keys: { signPrivateKey: string; sealPublicKey: string };
}

const nodeJson = (dataDir: string): NodeJson => JSON.parse(readFileSync(join(dataDir, 'node.json'), 'utf8'));

async function signedPost(
  url: string,
  path: string,
  from: { nodeId: string; gatewayId: string; signPrivateKey: string },
  toNodeId: string,
  body: unknown,
  headersOverride?: Record<string, string>,
): Promise<{ status: number; body: any; headers: Record<string, string> }> {
  const text = JSON.stringify(body);
  const headers =
    headersOverride ??
    peerHeaders(signingKey(from.signPrivateKey), {
      method: 'POST',
      path,
      gatewayId: from.gatewayId,
      nodeId: from.nodeId,
      toNodeId,
      body: text,
    });
  const r = await fetch(`${url}${path}`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', ...headers },
    body: text,
  });
  return { status: r.status, body: await r.json(), headers };
}

test('forged credential pushes and pulls are refused: another gateway, a non-dispatcher member, a replay', async (t) => {
  const g = await gatewayWithNodes(t, 2);
  const nodes = (await g.svc.api.call('GET', '/api/v1/gateways/gw/nodes')).nodes;
  const worker = nodes.find((n: any) => n.role === 'worker');
  const dispatcher = nodes.find((n: any) => n.role === 'dispatcher');
  const workerDir = g.nodes.find((n) => n.name === worker.name)?.dataDir ?? '';
  const dispatcherDir = g.nodes.find((n) => n.name === dispatcher.name)?.dataDir ?? '';
  const target = nodeJson(workerDir);
  const url = `http://${worker.peerAddress}`;

  // A node of another gateway, registered with the same service.
  const other = await g.svc.api.call('POST', '/api/v1/gateways', { name: 'gw-evil' });
  const evilDir = tempDir(t, 'ferry-evil-');
  await startNode(t, g.svc, { name: 'evil', key: other.key1, dataDir: evilDir });
  const evil = nodeJson(evilDir);

  // What a forger would push: version 99 of a credential, sealed properly to the target.
  const push = (lease: string): CredentialPushT => ({
    epoch: 1,
    lease,
    entries: [
      {
        linkedService: 'maria',
        version: 99,
        box: sealSecrets(
          target.keys.sealPublicKey,
          { password: 'forged' },
          copyBoxId(target.nodeId, 'maria', 99),
          'credential-copy',
        ),
      },
    ],
  });

  const asEvil = {
    nodeId: evil.nodeId,
    gatewayId: evil.gatewayId,
    signPrivateKey: nodeJson(evilDir).keys.signPrivateKey,
  };
  const foreign = await signedPost(url, '/v1/credentials/push', asEvil, target.nodeId, push('x.y'));
  assert.equal(foreign.status, 401);
  assert.match(foreign.body.message, /not signed by a node of this gateway/);
  // Claiming this gateway's id does not help: its key is not a member's.
  const posing = await signedPost(
    url,
    '/v1/credentials/push',
    { ...asEvil, gatewayId: target.gatewayId },
    target.nodeId,
    push('x.y'),
  );
  assert.equal(posing.status, 401);
  assert.match(posing.body.message, /not signed by a current member/);
  const pull = await signedPost(url, '/v1/credentials/pull', asEvil, target.nodeId, {
    gatewayKey: true,
    linkedServices: [],
  });
  assert.equal(pull.status, 401);
  assert.equal(JSON.stringify(pull.body).includes('x25519-aes256gcm.'), false, 'no key handed out');

  // A member of the gateway, but without the service's lease token for the current epoch (a token
  // it made up): refused, whoever sends it, as a push from a member that is not the dispatcher is.
  const d = nodeJson(dispatcherDir);
  const asDispatcher = { nodeId: d.nodeId, gatewayId: d.gatewayId, signPrivateKey: d.keys.signPrivateKey };
  const madeUp = await signedPost(url, '/v1/credentials/push', asDispatcher, target.nodeId, push('made.up'));
  assert.equal(madeUp.status, 401);
  assert.match(madeUp.body.message, /does not name dispatcher of this epoch/);

  // A replay of a request the node already took (same nonce) is refused before its body is read.
  const pullOk = await signedPost(url, '/v1/credentials/pull', asDispatcher, target.nodeId, {
    gatewayKey: false,
    linkedServices: [],
  });
  assert.equal(pullOk.status, 200, JSON.stringify(pullOk.body));
  const replay = await signedPost(
    url,
    '/v1/credentials/pull',
    asDispatcher,
    target.nodeId,
    { gatewayKey: false, linkedServices: [] },
    pullOk.headers,
  );
  assert.equal(replay.status, 401);
  assert.match(replay.body.message, /replayed/);

  // Nothing of it was taken: the worker holds no version 99.
  await eventually('a heartbeat after the forgeries', async () => {
    const w = (await g.svc.api.call('GET', '/api/v1/gateways/gw/nodes')).nodes.find(
      (n: any) => n.name === worker.name,
    );
    return Date.parse(w.lastSeenAt) > Date.now() - 500 ? w : undefined;
  }).then((w: any) => assert.deepEqual(w.credentials.versions, {}));
});

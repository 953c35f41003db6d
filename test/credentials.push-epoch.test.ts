/**
 * A credential push carries the service's lease token, and must come from the dispatcher of
 * the current epoch. A node that was dispatcher under an earlier epoch still holds the lease token
 * the service gave it then (a real, service-signed token: minted here with the service's own lease
 * key, as the service signed it for that epoch). Pushed with that old token, a forged entry (a
 * version far above any granted) must be refused, and nothing taken: else any former dispatcher can
 * plant values the whole gateway then adopts, and fence off every later grant (a version below its
 * forged one is never taken).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { gatewayWithNodes } from './helpers/scenario.ts';
import { keyOf, mintLease, peerCall, registrationOf, statusOf } from './helpers/peer.ts';
import { copyBoxId } from '../src/protocol/credentials.ts';
import { sealSecrets } from '../src/protocol/sealed-secrets.ts';

test('a credential push with the lease of an earlier epoch is refused, and nothing of it is taken', async (t) => {
  const g = await gatewayWithNodes(t, 2);
  const nodes = (await g.svc.api.call('GET', '/api/v1/gateways/gw/nodes')).nodes;
  const dispatcherView = nodes.find((n: any) => n.role === 'dispatcher');
  const dispatcher = g.nodes.find((n) => n.name === dispatcherView.name)!;
  const worker = g.nodes.find((n) => n.name !== dispatcherView.name)!;
  const epoch = statusOf(dispatcher.dataDir).epoch;
  assert.ok(epoch >= 1, `current epoch ${epoch}`);
  const target = registrationOf(dispatcher.dataDir);
  const sender = registrationOf(worker.dataDir);
  const targetSeal = JSON.parse(readFileSync(join(dispatcher.dataDir, 'node.json'), 'utf8')).keys
    .sealPublicKey as string;

  const old = epoch - 1;
  const lease = mintLease(g.svc.dataDir, {
    gatewayId: sender.gatewayId,
    dispatcherNodeId: sender.nodeId,
    epoch: old,
  });
  const body = {
    epoch: old,
    lease,
    entries: [
      {
        linkedService: 'maria',
        version: 9999,
        box: sealSecrets(
          targetSeal,
          { password: 'planted' },
          copyBoxId(target.nodeId, 'maria', 9999),
          'credential-copy',
        ),
      },
    ],
  };
  const res = await peerCall(`http://${dispatcherView.peerAddress}`, 'POST', '/v1/credentials/push', body, {
    key: keyOf(sender),
    gatewayId: sender.gatewayId,
    nodeId: sender.nodeId,
    toNodeId: target.nodeId,
  });
  assert.notEqual(res.status, 200, `taken: ${JSON.stringify(res.body)}`);
  assert.match(res.body.message, /epoch/);
  assert.equal(res.body.credentials, undefined);
});

/**
 * What a tls-mode node refuses, seen from an attacker's side of its peer port: plain HTTP (with a
 * message that says TLS only); a TLS client whose certificate comes from another gateway's CA (a real
 * node of another gateway, trusting this gateway's CA, its best case); a client that reaches the
 * node by an address its certificate does not name; and, over a channel with a valid certificate of
 * this gateway, a request signed by a node of another gateway (TLS is the channel, the Ed25519
 * signature is membership: both are checked).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { request as httpRequest } from 'node:http';
import { request as httpsRequest } from 'node:https';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { eventually, startNode } from './helpers/cluster.ts';
import { gatewayWithNodes, nodesView } from './helpers/scenario.ts';
import { keyOf, registrationOf } from './helpers/peer.ts';
import { peerHeaders } from '../src/protocol/peer.ts';

interface Answer {
  status?: number;
  body?: string;
  error?: NodeJS.ErrnoException;
}

function answer(req: ReturnType<typeof httpRequest>): Promise<Answer> {
  return new Promise((resolve) => {
    req.on('response', (res) => {
      let body = '';
      res.on('data', (c: Buffer) => (body += c.toString()));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body }));
    });
    req.on('error', (error: NodeJS.ErrnoException) => resolve({ error }));
    req.end();
  });
}

const tlsFiles = (dataDir: string) => ({
  ca: readFileSync(join(dataDir, 'tls', 'ca.pem')),
  cert: readFileSync(join(dataDir, 'tls', 'node-cert.pem')),
  key: readFileSync(join(dataDir, 'tls', 'node-key.pem')),
});

test("a tls-mode node refuses plain HTTP, another gateway's certificates, a wrong address and another gateway's signature", async (t) => {
  const g = await gatewayWithNodes(t, 2);
  await g.svc.api.call('PATCH', `/api/v1/gateways/${g.gateway}`, { encryption: 'tls' });
  await eventually('both nodes in TLS only', async () => {
    const v = await nodesView(g);
    return v.nodes.every((n: any) => n.transport === 'tls' && n.status === 'Online');
  });
  // A node of another gateway of the same service, in tls mode too: its own CA and certificate.
  const other = await g.svc.api.call('POST', '/api/v1/gateways', { name: 'other' });
  await g.svc.api.call('PATCH', '/api/v1/gateways/other', { encryption: 'tls' });
  const stranger = await startNode(t, g.svc, { name: 'stranger', key: other.key1 });
  await eventually("the stranger's certificate from its gateway's CA", async () => {
    const v = await g.svc.api.call('GET', '/api/v1/gateways/other/nodes');
    return v.nodes[0]?.transport === 'tls';
  });

  const target = g.nodes[0]!;
  const port = Number((await nodesView(g)).nodes[0].peerAddress.split(':')[1]);
  const mine = tlsFiles(g.nodes[1]!.dataDir);
  const theirs = tlsFiles(stranger.dataDir);
  assert.notDeepEqual(theirs.ca, mine.ca, 'each gateway has its own CA');

  // 1. Plain HTTP: refused, saying why.
  const plain = await answer(httpRequest({ host: '127.0.0.1', port, path: '/v1/ping' }));
  assert.equal(plain.status, 403);
  assert.match(JSON.parse(plain.body ?? '{}').message, /TLS only/);

  // 2. The other gateway's node, its certificate and key, trusting this gateway's CA: no handshake.
  const foreign = await answer(
    httpsRequest({
      host: '127.0.0.1',
      port,
      path: '/healthz',
      ca: mine.ca,
      cert: theirs.cert,
      key: theirs.key,
    }),
  );
  assert.ok(foreign.error, `refused (got ${foreign.status})`);
  assert.match(foreign.error.message, /alert|certificate|socket hang up|ECONNRESET/i);
  // ...and this node does not trust the other gateway's CA either, as a client.
  const backwards = await answer(
    httpsRequest({
      host: '127.0.0.1',
      port,
      path: '/healthz',
      ca: theirs.ca,
      cert: mine.cert,
      key: mine.key,
    }),
  );
  assert.match(backwards.error?.code ?? '', /^(SELF_SIGNED_CERT_IN_CHAIN|UNABLE_TO_VERIFY_LEAF_SIGNATURE)$/);

  // 3. A valid member certificate, but the node reached by an address its certificate does not name.
  const wrongName = await answer(
    httpsRequest({ host: 'localhost', port, path: '/healthz', ca: mine.ca, cert: mine.cert, key: mine.key }),
  );
  assert.equal(wrongName.error?.code, 'ERR_TLS_CERT_ALTNAME_INVALID');
  // The same, by the address it names: taken.
  const ok = await answer(
    httpsRequest({ host: '127.0.0.1', port, path: '/healthz', ca: mine.ca, cert: mine.cert, key: mine.key }),
  );
  assert.equal(ok.status, 200);

  // 4. Over a valid channel, a request signed by the other gateway's node: refused by the signature.
  const reg = registrationOf(stranger.dataDir);
  const targetId = registrationOf(target.dataDir).nodeId;
  const signed = await answer(
    httpsRequest({
      host: '127.0.0.1',
      port,
      path: '/v1/ping',
      ca: mine.ca,
      cert: mine.cert,
      key: mine.key,
      headers: peerHeaders(keyOf(reg), {
        method: 'GET',
        path: '/v1/ping',
        gatewayId: reg.gatewayId,
        nodeId: reg.nodeId,
        toNodeId: targetId,
        body: '',
      }),
    }),
  );
  assert.equal(signed.status, 401);
  assert.match(JSON.parse(signed.body ?? '{}').message, /not signed by a node of this gateway/);

  // The gateway's own nodes still reach each other: both Online.
  const v = await nodesView(g);
  for (const n of v.nodes) assert.equal(n.status, 'Online', `${n.name}: ${n.statusHint}`);
});

/**
 * A linked service that keeps its credentials in the gateway, deleted and created again under
 * the same name. The nodes still hold the old one's values under its name, at its versions; the new
 * one's versions start at 1 again. So (1) a copy with the new linked service (which may point at
 * another host and user) runs with the old one's password, sent to that host, instead of failing
 * because no node holds credentials set for it; and (2) `ferry credential set` for the new one is
 * refused by every node ("already holds version N"), until as many grants have been asked for.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { request } from 'node:http';
import { eventually } from './helpers/cluster.ts';
import { fsLinkedServices, gatewayWithNodes, runPipeline, waitRun } from './helpers/scenario.ts';
import { nodesOf } from './helpers/gateway-credentials.ts';
import { GRANT_HEADER, sealCredential } from '../src/protocol/credentials.ts';

/** `ferry credential set maria --node node-1`, as the CLI sends it. */
async function setOnNode(
  api: { call(m: string, p: string, b?: unknown): Promise<any> },
  peerAddress: string,
  values: Record<string, unknown>,
): Promise<{ status: number; body: any }> {
  const gr = await api.call('POST', '/api/v1/linked-services/maria/credential-grant', { node: 'node-1' });
  const ls = await api.call('GET', '/api/v1/linked-services/maria');
  const box = sealCredential(gr.gatewayKey, gr, {
    values,
    endpoint: { type: ls.type, properties: ls.properties },
  });
  const text = JSON.stringify({ linkedService: 'maria', version: gr.version, box });
  const [host, port] = peerAddress.split(':');
  return new Promise((resolve, reject) => {
    const req = request(
      {
        host,
        port: Number(port),
        path: '/admin/credentials',
        method: 'POST',
        headers: { 'content-type': 'application/json', [GRANT_HEADER]: gr.grant },
      },
      (res) => {
        let out = '';
        res.on('data', (c: Buffer) => (out += c.toString()));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, body: JSON.parse(out) }));
      },
    );
    req.on('error', reject);
    req.end(text);
  });
}

const maria = (user: string) => ({
  name: 'maria',
  type: 'mysql',
  gateway: 'gw',
  credentials: 'gateway',
  // Nothing listens on port 1: a copy that gets as far as connecting fails with ECONNREFUSED.
  properties: { host: '127.0.0.1', port: 1, user, database: 'd' },
});

test('a gateway-held linked service created again: the old values are not used, and new ones can be set', async (t) => {
  const g = await gatewayWithNodes(t, 2);
  const api = g.svc.api;
  await fsLinkedServices(g, { in: 'unused', out: 'out' }, { in: 'unused', out: 'out' });
  await api.call('POST', '/api/v1/linked-services', maria('old_user'));
  const node1 = async () => (await nodesOf(g)).find((n) => n.name === 'node-1');
  await eventually('node-1 holds the gateway key', async () => (await node1()).credentials?.gatewayKey);
  for (let i = 0; i < 3; i++) {
    const r = await setOnNode(api, (await node1()).peerAddress, { password: `old-secret-${i}` });
    assert.equal(r.status, 200, JSON.stringify(r.body));
  }
  await eventually('both nodes hold version 3', async () =>
    (await nodesOf(g)).every((n) => n.credentials?.versions?.maria === 3),
  );

  await api.call('DELETE', '/api/v1/linked-services/maria');
  await api.call('POST', '/api/v1/linked-services', maria('new_user'));

  // (1) Nothing was set for the new linked service: a copy with it must not run with the old values.
  const runId = await runPipeline(g, {
    name: 'items',
    activities: [
      {
        name: 'items',
        source: { linkedService: 'maria', table: 'items' },
        sink: { linkedService: 'out', path: 'x' },
      },
    ],
  });
  const run = await waitRun(g, runId);
  assert.equal(run.status, 'failed');
  assert.match(JSON.stringify(run), /no node that is up holds them/, JSON.stringify(run).slice(0, 2000));

  // (2) Its credentials can be set.
  const r = await setOnNode(api, (await node1()).peerAddress, { password: 'new-secret' });
  assert.equal(r.status, 200, JSON.stringify(r.body));
});

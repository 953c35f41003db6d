/**
 * Gateway-held values are bound to the endpoint they were set for. The service keeps, and may
 * change, the linked service's other properties: its host and port. A
 * service under an attacker's control (here: its admin API, which is all such a service needs)
 * points the linked service at a server of its own, and asks a node to connect (a connection test,
 * or any copy): the node sends the gateway-held password there. A PostgreSQL server may ask for the
 * password in clear (AuthenticationCleartextPassword), and the client sends it. The password the
 * service must never see must not reach a host the operator did not seal it for.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createServer, type Socket } from 'node:net';
import { request } from 'node:http';
import { eventually } from './helpers/cluster.ts';
import { gatewayWithNodes } from './helpers/scenario.ts';
import { nodesOf } from './helpers/gateway-credentials.ts';
import { GRANT_HEADER, sealCredential } from '../src/protocol/credentials.ts';

const SECRET = `pg-secret-${process.pid}-${Date.now().toString(36)}`;

/** A server that speaks just enough PostgreSQL to ask for the password in clear; what it was sent. */
async function passwordCatcher(t: {
  after(fn: () => unknown): void;
}): Promise<{ port: number; got: () => string }> {
  let got = '';
  const server = createServer((s: Socket) => {
    s.on('error', () => s.destroy());
    s.on('data', (d: Buffer) => {
      got += d.toString('latin1');
      // After the startup message: AuthenticationCleartextPassword ('R', length 8, code 3).
      if (d[0] !== 0x70) s.write(Buffer.from([0x52, 0, 0, 0, 8, 0, 0, 0, 3]));
      else s.destroy();
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  t.after(() => server.close());
  const address = server.address();
  return { port: typeof address === 'object' && address ? address.port : 0, got: () => got };
}

test("a service that changes a gateway-held linked service's host does not get its password, and the node says why", async (t) => {
  const g = await gatewayWithNodes(t, 1);
  const api = g.svc.api;
  const pg = (port: number) => ({
    name: 'pg',
    type: 'postgres',
    gateway: 'gw',
    credentials: 'gateway',
    properties: { host: '127.0.0.1', port, database: 'd', user: 'u' },
  });
  await api.call('POST', '/api/v1/linked-services', pg(5432));
  const node = async () => (await nodesOf(g))[0];
  await eventually('the node holds the gateway key', async () => (await node()).credentials?.gatewayKey);

  // The operator sets the password straight on the node: the service never sees it.
  const gr = await api.call('POST', '/api/v1/linked-services/pg/credential-grant', { node: 'node-1' });
  const text = JSON.stringify({
    linkedService: 'pg',
    version: gr.version,
    box: sealCredential(gr.gatewayKey, gr, {
      values: { password: SECRET },
      endpoint: { type: 'postgres', properties: { host: '127.0.0.1', port: 5432, database: 'd', user: 'u' } },
    }),
  });
  const [host, port] = String((await node()).peerAddress).split(':');
  const status = await new Promise<number>((resolve, reject) => {
    const req = request(
      {
        host,
        port: Number(port),
        path: '/admin/credentials',
        method: 'POST',
        headers: { [GRANT_HEADER]: gr.grant },
      },
      (res) => {
        res.resume();
        res.on('end', () => resolve(res.statusCode ?? 0));
      },
    );
    req.on('error', reject);
    req.end(text);
  });
  assert.equal(status, 200);

  // The service, under an attacker's control, points the linked service at its own server.
  const catcher = await passwordCatcher(t);
  await api.call('POST', '/api/v1/linked-services', pg(catcher.port));
  const tested = await api.raw('POST', '/api/v1/linked-services/pg/test', { timeoutSeconds: 20 });
  assert.equal(tested.status, 200, JSON.stringify(tested.body));
  assert.equal(tested.body.ok, false);
  assert.match(
    tested.body.read.error.message,
    /linked service "pg" has changed \(port\) since its credentials were set/,
  );
  assert.equal(catcher.got().includes(SECRET), false, 'the gateway-held password reached the new host');
  assert.equal(catcher.got(), '', 'the node did not even connect there');
  // Pointed back where it was: the values are used again (the shared PostgreSQL takes any password).
  await api.call('POST', '/api/v1/linked-services', pg(5432));
  const back = await api.raw('POST', '/api/v1/linked-services/pg/test', { timeoutSeconds: 20 });
  assert.equal(
    back.body.read.error?.message?.includes('has changed') ?? false,
    false,
    JSON.stringify(back.body),
  );
});

/**
 * Over TLS, a client without a certificate of the gateway gets no answer, the one exception
 * being an operator's `POST /admin/credentials` (which carries the service's grant). The exception
 * must be that route only: not every path that starts with /admin/ (`/admin/../v1/ping`,
 * `/admin/anything`, a GET of the route), and not a request too malformed to parse. Each of those
 * must end unanswered, as `GET /v1/ping` does.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { connect } from 'node:tls';
import { eventually } from './helpers/cluster.ts';
import { gatewayWithNodes, nodesView } from './helpers/scenario.ts';

/** Sends `text` over TLS without a client certificate; everything the node answered ('' for nothing). */
function certless(port: number, text: string): Promise<string> {
  return new Promise((resolve) => {
    const s = connect({ host: '127.0.0.1', port, rejectUnauthorized: false });
    let out = '';
    const done = (): void => {
      s.destroy();
      resolve(out);
    };
    s.on('secureConnect', () => s.write(text));
    s.on('data', (d: Buffer) => (out += d.toString()));
    s.on('error', done);
    s.on('close', done);
    setTimeout(done, 5_000).unref();
  });
}

test('over TLS without a certificate, only POST /admin/credentials is answered', async (t) => {
  const g = await gatewayWithNodes(t, 1);
  await g.svc.api.call('PATCH', `/api/v1/gateways/${g.gateway}`, { encryption: 'tls' });
  await eventually('the node in TLS only', async () =>
    (await nodesView(g)).nodes.every((n: any) => n.transport === 'tls' && n.status === 'Online'),
  );
  const port = Number((await nodesView(g)).nodes[0].peerAddress.split(':')[1]);

  // The exception: answered (refused for want of a grant, saying so).
  const admin = await certless(
    port,
    'POST /admin/credentials HTTP/1.1\r\nHost: x\r\ncontent-length: 0\r\n\r\n',
  );
  assert.match(admin, /^HTTP\/1\.1 401/);
  assert.match(admin, /no grant/);

  for (const req of [
    'GET /v1/ping HTTP/1.1\r\nHost: x\r\n\r\n',
    'GET /admin/../v1/ping HTTP/1.1\r\nHost: x\r\n\r\n',
    'GET /admin/../metrics HTTP/1.1\r\nHost: x\r\n\r\n',
    'POST /admin/anything HTTP/1.1\r\nHost: x\r\ncontent-length: 0\r\n\r\n',
    'GET /admin/credentials HTTP/1.1\r\nHost: x\r\n\r\n',
    'NOT HTTP AT ALL\r\n\r\n',
  ]) {
    assert.equal(await certless(port, req), '', `answered: ${JSON.stringify(req.split('\r\n')[0])}`);
  }
});

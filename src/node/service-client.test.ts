/**
 * The node checks every reply it reads from the service against the protocol schemas: a fake service
 * (a plain HTTP server) answers JSON of the wrong shape, and each call fails with a clear, retryable
 * `unavailable` naming the route and the fields at fault, never their values (secrets travel in
 * these replies). A reply of the right shape, with fields this node does not know, still passes.
 */
import { test, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { FerryError } from '../common/errors.ts';
import { ServiceClient } from './service-client.ts';
import type { HeartbeatRequestT } from '../protocol/agent.ts';

const KEY_TEXT = 'MCowBQYDK2VwAyEA' + 'A'.repeat(44);

/** A service that answers each route with the JSON the test gives it (200), or 404. */
async function fakeService(t: TestContext, replies: Record<string, unknown>): Promise<ServiceClient> {
  const server = createServer((req, res) => {
    req.resume();
    req.on('end', () => {
      const path = req.url ?? '';
      if (!(path in replies)) {
        res.writeHead(404, { 'content-type': 'application/json' });
        res.end(JSON.stringify({ code: 'not_found', message: `no route ${path}`, retryable: false }));
        return;
      }
      res.writeHead(200, { 'content-type': 'application/json' });
      res.end(JSON.stringify(replies[path]));
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const client = new ServiceClient(`http://127.0.0.1:${(server.address() as AddressInfo).port}`, 'token');
  t.after(async () => {
    await client.close();
    server.closeAllConnections();
    await new Promise((resolve) => server.close(resolve));
  });
  return client;
}

const beat: HeartbeatRequestT = {
  version: '0.1.0',
  metrics: {
    cpuPercent: 1,
    memoryAvailableBytes: 1,
    memoryTotalBytes: 2,
    networkInBytesPerSec: 0,
    networkOutBytesPerSec: 0,
  },
  running: [],
  defaultLimit: 2,
  draining: false,
  upgrading: false,
  tls: false,
  peerHost: '127.0.0.1',
  peerPort: 8060,
  reach: [],
  signPublicKey: KEY_TEXT,
  sealPublicKey: KEY_TEXT,
};

const goodHeartbeat = {
  nodeId: 'n1',
  gatewayName: 'gw',
  role: 'worker',
  epoch: 1,
  dispatcherNodeId: null,
  status: 'Online',
  statusHint: '',
  limit: null,
  drain: false,
  peers: [],
  revoked: [],
  heartbeatIntervalMs: 1000,
  servicePublicKey: KEY_TEXT,
};

/** The call fails with a retryable `unavailable` whose message says `route` and every `says`, and no `secret`. */
async function assertMalformed(
  call: Promise<unknown>,
  route: string,
  says: readonly string[],
  secret?: string,
): Promise<void> {
  const err = await call.then(
    () => assert.fail(`${route}: a malformed reply was taken`),
    (e: unknown) => e,
  );
  assert.ok(err instanceof FerryError, String(err));
  assert.equal(err.code, 'unavailable');
  assert.equal(err.retryable, true);
  assert.match(err.message, new RegExp(`${route} answered in a shape this node does not understand: `));
  for (const s of says) assert.ok(err.message.includes(s), `${err.message}\n  should say: ${s}`);
  if (secret !== undefined) assert.ok(!err.message.includes(secret), `quotes a secret: ${err.message}`);
  assert.match(err.hint ?? '', /same Ferry version/);
}

test('malformed replies: each call fails clearly, naming the route and the fields, never their values', async (t) => {
  const client = await fakeService(t, {
    '/api/v1/agent/register': { nodeId: 'n1', nodeToken: ['tok-SECRET-1'], gatewayId: 'g1' },
    '/api/v1/agent/key-gateway': [],
    '/api/v1/agent/heartbeat': {
      ...goodHeartbeat,
      role: 'boss',
      dispatcherLease: { token: 'lease-SECRET-2' },
    },
    '/api/v1/agent/claim': { attempts: 'none' },
    '/api/v1/agent/reports': { results: [{ ok: 'yes' }] },
  });
  await assertMalformed(
    client.register({
      key: 'k',
      name: 'n',
      version: '0.1.0',
      peerHost: 'h',
      peerPort: 1,
      tls: false,
      cores: 1,
      memoryBytes: 1,
      defaultLimit: 2,
      signPublicKey: KEY_TEXT,
      sealPublicKey: KEY_TEXT,
    }),
    'POST /api/v1/agent/register',
    ['nodeToken: must be string', 'gatewayName: is required'],
    'SECRET',
  );
  await assertMalformed(client.keyGateway('k'), 'POST /api/v1/agent/key-gateway', ['(root): must be object']);
  await assertMalformed(
    client.heartbeat(beat),
    'POST /api/v1/agent/heartbeat',
    ['role: ', 'dispatcherLease: must be string'],
    'SECRET',
  );
  await assertMalformed(
    client.claim({ epoch: 1, slots: [], waitMs: 0 }, new AbortController().signal),
    'POST /api/v1/agent/claim',
    ['attempts: must be array'],
  );
  await assertMalformed(client.progress('a1', { rows: 1, bytes: 1 }), 'POST /api/v1/agent/reports', [
    'results/0',
  ]);
});

test('a long list of problems: the first few, and how many more', async (t) => {
  const client = await fakeService(t, { '/api/v1/agent/heartbeat': {} });
  await assertMalformed(client.heartbeat(beat), 'POST /api/v1/agent/heartbeat', [
    'nodeId: is required',
    'more)',
  ]);
});

test('well-formed replies pass, fields this node does not know included', async (t) => {
  const client = await fakeService(t, {
    '/api/v1/agent/heartbeat': { ...goodHeartbeat, aFieldFromANewerService: { x: 1 } },
    '/api/v1/agent/key-gateway': { gatewayId: 'g1', gatewayName: 'gw' },
    '/api/v1/agent/claim': { attempts: [] },
  });
  const reply = await client.heartbeat(beat);
  assert.equal(reply.role, 'worker');
  assert.deepEqual(await client.keyGateway('k'), { gatewayId: 'g1', gatewayName: 'gw' });
  assert.deepEqual(await client.claim({ epoch: 1, slots: [], waitMs: 0 }, new AbortController().signal), {
    attempts: [],
  });
});

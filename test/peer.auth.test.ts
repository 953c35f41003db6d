/**
 * The node-to-node port of real `ferry node` processes, called directly: /healthz and /metrics are
 * open; every /v1 request must be signed by a current member of the node's gateway (its own key, as
 * the service lists it), for this node, recently, once; a deleted node's key stops working within a
 * heartbeat; a dispatch is believed only with the service's lease token for its sender and epoch, so a
 * forged epoch changes nothing.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { generateKeyPairSync } from 'node:crypto';
import { request } from 'node:http';
import { connect } from 'node:net';
import { join } from 'node:path';
import { startNode, startService, eventually, type ServiceHandle } from './helpers/cluster.ts';
import { fsLinkedServices, gatewayWithNodes, makeFiles, runPipeline, waitRun } from './helpers/scenario.ts';
import {
  keyOf,
  mintLease,
  nextHeartbeatOf,
  peerCall,
  peerRequest,
  peerUrlOf,
  planDispatch,
  registrationOf,
  send,
  strangerKey,
  type Signer,
} from './helpers/peer.ts';
import { signLease } from '../src/protocol/dispatcher-lease.ts';

function assertUnauthorized(r: { status: number; body: any }, what: string, message?: RegExp): void {
  assert.equal(r.status, 401, `${what}: ${JSON.stringify(r.body)}`);
  assert.equal(r.body.code, 'unauthorized', what);
  if (message) assert.match(r.body.message, message, what);
}

async function gatewayView(svc: ServiceHandle, name: string): Promise<any> {
  return svc.api.call('GET', `/api/v1/gateways/${name}`);
}

test('a node serves /healthz and /metrics on its peer port without signing', async (t) => {
  const g = await gatewayWithNodes(t, 1);
  const base = await peerUrlOf(g.nodes[0]!.dataDir);

  const health = await fetch(`${base}/healthz`);
  assert.equal(health.status, 200);
  assert.deepEqual(await health.json(), { status: 'ok' });

  const metrics = await fetch(`${base}/metrics`);
  assert.equal(metrics.status, 200);
  assert.match(metrics.headers.get('content-type') ?? '', /^text\/plain/);
  const text = await metrics.text();
  assert.match(text, /^ferry_node_jobs_running\{gateway="gw",node="node-1"\} 0$/m);
  assert.match(text, /^ferry_node_role\{gateway="gw",node="node-1",role="dispatcher"\} 1$/m);

  // The same port in the node list.
  const nodes = (await g.svc.api.call('GET', `/api/v1/gateways/${g.gateway}/nodes`)).nodes;
  assert.equal(`http://${nodes[0].peerAddress}`, base);
});

test('GET /v1/ping is taken only signed by a current member of the gateway, for this node, recently, once', async (t) => {
  const svc = await startService(t);
  const a = await svc.api.call('POST', '/api/v1/gateways', { name: 'gw-a' });
  const b = await svc.api.call('POST', '/api/v1/gateways', { name: 'gw-b' });
  const a1 = await startNode(t, svc, { name: 'a1', key: a.key1 });
  const a2 = await startNode(t, svc, { name: 'a2', key: a.key1 });
  const b1 = await startNode(t, svc, { name: 'b1', key: b.key1 });
  const [regA1, regA2, regB1] = [a1, a2, b1].map((n) => registrationOf(n.dataDir));
  assert.ok(regA1 && regA2 && regB1);
  assert.equal((regA1 as unknown as Record<string, unknown>).peerSecret, undefined, 'no shared secret');
  const baseA1 = await peerUrlOf(a1.dataDir);
  const baseB1 = await peerUrlOf(b1.dataDir);
  const asA2: Signer = {
    key: keyOf(regA2),
    gatewayId: regA1.gatewayId,
    nodeId: regA2.nodeId,
    toNodeId: regA1.nodeId,
  };

  // a1 learns of a2 from its heartbeat.
  const ok = await eventually('a2 accepted by a1', async () => {
    const r = await peerCall(baseA1, 'GET', '/v1/ping', undefined, asA2);
    return r.status === 200 ? r : undefined;
  });
  assert.equal(ok.body.name, 'a1');
  assert.equal(ok.body.nodeId, regA1.nodeId);
  assert.equal(ok.body.gatewayId, regA1.gatewayId);
  assert.equal(ok.body.draining, false);

  assertUnauthorized(await peerCall(baseA1, 'GET', '/v1/ping', undefined), 'unsigned');
  assertUnauthorized(
    await peerCall(baseA1, 'GET', '/v1/ping', undefined, { ...asA2, key: strangerKey() }),
    "a stranger's key in a2's name",
    /not signed by a node of this gateway/,
  );
  assertUnauthorized(
    await peerCall(baseA1, 'GET', '/v1/ping', undefined, {
      ...asA2,
      key: strangerKey(),
      nodeId: 'node_stranger',
    }),
    'a stranger in its own name',
    /not signed by a current member/,
  );
  // b1 is a member of another gateway: refused under either gateway id.
  const asB1: Signer = {
    key: keyOf(regB1),
    gatewayId: regB1.gatewayId,
    nodeId: regB1.nodeId,
    toNodeId: regA1.nodeId,
  };
  assertUnauthorized(await peerCall(baseA1, 'GET', '/v1/ping', undefined, asB1), "another gateway's node");
  assertUnauthorized(
    await peerCall(baseA1, 'GET', '/v1/ping', undefined, { ...asB1, gatewayId: regA1.gatewayId }),
    "another gateway's node claiming this gateway",
    /not signed by a current member/,
  );
  assert.equal(
    (
      await peerCall(baseB1, 'GET', '/v1/ping', undefined, {
        ...asA2,
        gatewayId: regB1.gatewayId,
        toNodeId: regB1.nodeId,
      })
    ).status,
    401,
    "a2 refused by another gateway's node",
  );
  // Signed for another node: refused by this one (a request cannot be replayed to a second node).
  assertUnauthorized(
    await peerCall(baseA1, 'GET', '/v1/ping', undefined, { ...asA2, toNodeId: regA2.nodeId }),
    'signed for another node',
    /signed for another node/,
  );
  // The time window: two minutes old, or two minutes ahead.
  for (const skew of [-120_000, 120_000]) {
    assertUnauthorized(
      await peerCall(baseA1, 'GET', '/v1/ping', undefined, { ...asA2, time: Date.now() + skew }),
      `time ${skew} ms off`,
      /window/,
    );
  }
  // The signature covers the path.
  assertUnauthorized(
    await peerCall(baseA1, 'GET', '/v1/ping', undefined, { ...asA2, signedPath: '/v1/other' }),
    'signed for another path',
  );
  // Each request once: the same headers again are refused.
  const once = peerRequest('GET', '/v1/ping', undefined, asA2);
  assert.equal((await send(baseA1, once)).status, 200);
  assertUnauthorized(await send(baseA1, once), 'replayed ping', /replayed/);

  // A ping takes no body: refused by its Content-Length, before anything is read.
  const withBody = await new Promise<{ status: number; body: any }>((resolve, reject) => {
    const r = peerRequest('GET', '/v1/ping', undefined, asA2);
    const req = request(
      `${baseA1}/v1/ping`,
      { method: 'GET', headers: { ...r.headers, 'content-length': '5' } },
      (res) => {
        let text = '';
        res.on('data', (d: Buffer) => (text += d.toString()));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, body: JSON.parse(text) }));
      },
    );
    req.on('error', reject);
    req.end('hello');
  });
  assert.equal(withBody.status, 400, JSON.stringify(withBody.body));
  assert.match(withBody.body.message, /takes no request body/);

  // A stranger that asks before sending its body ("Expect: 100-continue") is not invited to send it.
  const expectAnswer = await new Promise<string>((resolve) => {
    const socket = connect(Number(new URL(baseA1).port), '127.0.0.1');
    let text = '';
    socket.on('data', (d: Buffer) => (text += d.toString('latin1')));
    socket.on('close', () => resolve(text));
    socket.on('error', () => undefined);
    socket.on('connect', () =>
      socket.write(
        'POST /v1/dispatch HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: 1000000\r\nExpect: 100-continue\r\n\r\n',
      ),
    );
  });
  assert.match(expectAnswer, /^HTTP\/1\.1 401 /, 'refused at once, without "100 Continue"');

  // Signed but unknown route: authenticated first, then 404.
  const unknown = await peerCall(baseA1, 'GET', '/v1/nope', undefined, asA2);
  assert.equal(unknown.status, 404);
  assert.equal(unknown.body.code, 'not_found');
});

test("a deleted node's signed ping and dispatch are refused once the others have heard of it", async (t) => {
  const g = await gatewayWithNodes(t, 3);
  const gw = await gatewayView(g.svc, g.gateway);
  const workers = g.nodes.filter((n) => n.name !== gw.dispatcher);
  const victim = workers[0]!;
  const target = g.nodes.find((n) => n !== victim)!;
  const regV = registrationOf(victim.dataDir);
  const regT = registrationOf(target.dataDir);
  const base = await peerUrlOf(target.dataDir);
  const asVictim: Signer = {
    key: keyOf(regV),
    gatewayId: regT.gatewayId,
    nodeId: regV.nodeId,
    toNodeId: regT.nodeId,
  };
  assert.equal((await peerCall(base, 'GET', '/v1/ping', undefined, asVictim)).status, 200, 'a member before');

  // Its node.json (its key) stays: what someone who kept a copy of it would hold.
  await g.svc.api.call('DELETE', `/api/v1/gateways/${g.gateway}/nodes/${victim.name}`);
  await nextHeartbeatOf(target.dataDir);

  assertUnauthorized(
    await peerCall(base, 'GET', '/v1/ping', undefined, asVictim),
    "the deleted node's ping",
    /not signed by a current member/,
  );
  const lease = mintLease(g.svc.dataDir, {
    gatewayId: regT.gatewayId,
    dispatcherNodeId: regV.nodeId,
    epoch: gw.epoch,
  });
  assertUnauthorized(
    await peerCall(
      base,
      'POST',
      '/v1/dispatch',
      planDispatch(regT.nodeId, gw.epoch, 'att_deleted', lease),
      asVictim,
    ),
    "the deleted node's dispatch",
    /not signed by a current member/,
  );
  const ping = await peerCall(base, 'GET', '/v1/ping', undefined, {
    ...asVictim,
    key: keyOf(registrationOf(workers[1]!.dataDir)),
    nodeId: registrationOf(workers[1]!.dataDir).nodeId,
  });
  assert.equal(ping.status, 200, 'the remaining members still are');
  // And the service no longer takes its node token.
  const beat = await g.svc.api.raw('POST', '/api/v1/agent/heartbeat', {}, regV.nodeToken);
  assert.equal(beat.status, 401, JSON.stringify(beat.body));
  assert.equal(ping.body.running, 0, 'nothing was started');
});

test('a dispatch is believed only with the service lease token for its sender and epoch: forged epochs, replays and tampered bodies change nothing', async (t) => {
  const g = await gatewayWithNodes(t, 2, { nodeArgs: ['--limit', '1'] });
  const gw = await gatewayView(g.svc, g.gateway);
  const dispatcher = g.nodes.find((n) => n.name === gw.dispatcher)!;
  const worker = g.nodes.find((n) => n.name !== gw.dispatcher)!;
  const regD = registrationOf(dispatcher.dataDir);
  const regW = registrationOf(worker.dataDir);
  const base = await peerUrlOf(worker.dataDir);
  const asD: Signer = {
    key: keyOf(regD),
    gatewayId: regW.gatewayId,
    nodeId: regD.nodeId,
    toNodeId: regW.nodeId,
  };
  const lease = (claims: { gatewayId?: string; dispatcherNodeId?: string; epoch: number }): string =>
    mintLease(g.svc.dataDir, {
      gatewayId: claims.gatewayId ?? regW.gatewayId,
      dispatcherNodeId: claims.dispatcherNodeId ?? regD.nodeId,
      epoch: claims.epoch,
    });
  const MAX = 2147483647;

  // A real member (the dispatcher itself) claims the highest epoch: without the service's word, refused.
  const forged: [string, string | undefined][] = [
    ['no lease', undefined],
    ['the lease of the current epoch', lease({ epoch: gw.epoch })],
    ['a lease naming the worker', lease({ epoch: MAX, dispatcherNodeId: regW.nodeId })],
    ['a lease of another gateway', lease({ epoch: MAX, gatewayId: 'gw_other' })],
    [
      'a lease signed by another key',
      signLease(generateKeyPairSync('ed25519').privateKey, {
        gatewayId: regW.gatewayId,
        dispatcherNodeId: regD.nodeId,
        epoch: MAX,
        issuedAt: Date.now(),
      }),
    ],
    ['a lease that is not one', 'x.y'],
  ];
  for (const [i, [what, token]] of forged.entries()) {
    assertUnauthorized(
      await peerCall(
        base,
        'POST',
        '/v1/dispatch',
        planDispatch(regW.nodeId, MAX, `att_forged_${i}`, token),
        asD,
      ),
      `epoch ${MAX} with ${what}`,
      /does not name the sender dispatcher/,
    );
  }
  // Nor may a member that is not the dispatcher dispatch, even with the dispatcher's real lease.
  const baseD = await peerUrlOf(dispatcher.dataDir);
  assertUnauthorized(
    await peerCall(
      baseD,
      'POST',
      '/v1/dispatch',
      planDispatch(regD.nodeId, gw.epoch, 'att_not_dispatcher', lease({ epoch: gw.epoch })),
      {
        key: keyOf(regW),
        gatewayId: regW.gatewayId,
        nodeId: regW.nodeId,
        toNodeId: regD.nodeId,
      },
    ),
    "the dispatcher's lease sent by another member",
    /does not name the sender dispatcher/,
  );

  // An older epoch, even with its real lease: fenced off.
  const stale = await peerCall(
    base,
    'POST',
    '/v1/dispatch',
    planDispatch(regW.nodeId, gw.epoch - 1, 'att_stale', lease({ epoch: gw.epoch - 1 })),
    asD,
  );
  assert.equal(stale.status, 409, JSON.stringify(stale.body));
  assert.equal(stale.body.code, 'stale_epoch');

  // The body is checked against the signed digest: the same headers over another body are refused.
  const good = planDispatch(regW.nodeId, gw.epoch, 'att_good', lease({ epoch: gw.epoch }));
  const tampered = { ...good, attempt: { ...good.attempt, attemptId: 'att_tamperd' } };
  assertUnauthorized(
    await peerCall(base, 'POST', '/v1/dispatch', tampered, { ...asD, signedBody: JSON.stringify(good) }),
    'a tampered body under valid headers',
    /digest/,
  );
  assertUnauthorized(
    await peerCall(base, 'POST', '/v1/dispatch', good, { ...asD, time: Date.now() - 120_000 }),
    'a dispatch two minutes old',
    /window/,
  );
  assertUnauthorized(
    await peerCall(base, 'POST', '/v1/dispatch', good, { ...asD, key: strangerKey() }),
    "a stranger's signature in the dispatcher's name",
  );
  // Signed, but not a dispatch: the body is checked before anything runs.
  const bad = await peerCall(base, 'POST', '/v1/dispatch', { epoch: gw.epoch }, asD);
  assert.equal(bad.status, 400, JSON.stringify(bad.body));
  assert.equal(bad.body.code, 'bad_request');
  assert.match(bad.body.message, /attempt/);

  // The worker still takes the current epoch (a forged one would have fenced it off), once.
  const real = peerRequest('POST', '/v1/dispatch', good, asD);
  const taken = await send(base, real);
  assert.equal(taken.status, 200, JSON.stringify(taken.body));
  assert.deepEqual(taken.body, { accepted: true });
  assertUnauthorized(await send(base, real), 'the same dispatch replayed, byte for byte', /replayed/);

  // And real work still runs on it.
  await eventually('the test attempt done', async () => {
    const r = await peerCall(base, 'GET', '/v1/ping', undefined, asD);
    return r.status === 200 && r.body.running === 0;
  });
  await fsLinkedServices(g, { in: 'src', out: 'dst' }, { in: 'in', out: 'out' });
  makeFiles(join(g.root, 'in'), '', 8, () => 64 * 1024);
  const runId = await runPipeline(g, {
    name: 'after-forgery',
    activities: [
      {
        name: 'files',
        source: { linkedService: 'src', filesPerTask: 1 },
        sink: { linkedService: 'dst' },
        maxBytesPerSecond: 256 * 1024,
      },
    ],
  });
  const run = await waitRun(g, runId, 90_000);
  assert.equal(run.status, 'succeeded', JSON.stringify(run.error));
  const onWorker = run.tasks
    .flatMap((tk: any) => tk.attemptList)
    .filter((a: any) => a.node === worker.name && a.status === 'succeeded');
  assert.ok(
    onWorker.length > 0,
    `the worker ran tasks: ${JSON.stringify(run.tasks.map((x: any) => x.attemptList))}`,
  );
  const after = await gatewayView(g.svc, g.gateway);
  assert.equal(after.epoch, gw.epoch, 'no failover happened on the way');
});

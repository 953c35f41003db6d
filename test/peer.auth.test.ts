/**
 * The node-to-node port of real `ferry node` processes, called directly with fetch: /healthz and
 * /metrics are open; every /v1 request must be signed with the secret of the node's own gateway,
 * recently (replay window); a correctly signed dispatch from an old dispatcher epoch is fenced off.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { eventually, startNode, startService, type ServiceHandle } from './helpers/cluster.ts';
import { gatewayWithNodes } from './helpers/scenario.ts';
import {
  PEER_HEADER_GATEWAY,
  PEER_HEADER_NODE,
  PEER_HEADER_SIGNATURE,
  PEER_HEADER_TIME,
  signPeerRequest,
  type DispatchRequestT,
} from '../src/protocol/peer.ts';

interface Registration {
  nodeId: string;
  nodeName: string;
  gatewayId: string;
  gatewayName: string;
  peerSecret: string;
}

function registrationOf(dataDir: string): Registration {
  return JSON.parse(readFileSync(join(dataDir, 'node.json'), 'utf8'));
}

/** The node's peer URL, from the status.json it writes after each heartbeat. */
async function peerUrlOf(dataDir: string): Promise<string> {
  return eventually(`${dataDir}/status.json with peerUrl`, () => {
    const s = JSON.parse(readFileSync(join(dataDir, 'status.json'), 'utf8')) as { peerUrl?: string };
    return s.peerUrl;
  });
}

interface Signing {
  secret: string;
  gatewayId: string;
  nodeId?: string;
  /** Default: now. */
  time?: number;
  /** Sign this path instead of the one requested. */
  signedPath?: string;
  /** Sign this body instead of the one sent. */
  signedBody?: string;
}

/** Calls a node's peer port; signed when `sign` is given. Returns the status and the parsed body. */
async function peerCall(
  base: string,
  method: 'GET' | 'POST',
  path: string,
  body: unknown,
  sign?: Signing,
): Promise<{ status: number; body: any }> {
  const text = body === undefined ? '' : JSON.stringify(body);
  const headers: Record<string, string> = { 'content-type': 'application/json' };
  if (sign) {
    const time = sign.time ?? Date.now();
    headers[PEER_HEADER_GATEWAY] = sign.gatewayId;
    headers[PEER_HEADER_NODE] = sign.nodeId ?? 'node_test';
    headers[PEER_HEADER_TIME] = String(time);
    headers[PEER_HEADER_SIGNATURE] = signPeerRequest(
      sign.secret,
      method,
      sign.signedPath ?? path,
      time,
      sign.signedBody ?? text,
    );
  }
  const res = await fetch(`${base}${path}`, {
    method,
    headers,
    ...(method === 'POST' ? { body: text } : {}),
  });
  const out = await res.text();
  return { status: res.status, body: out ? JSON.parse(out) : undefined };
}

function assertUnauthorized(r: { status: number; body: any }, what: string): void {
  assert.equal(r.status, 401, `${what}: ${JSON.stringify(r.body)}`);
  assert.equal(r.body.code, 'unauthorized', what);
  assert.equal(r.body.message, 'request is not signed by a node of this gateway', what);
}

/** A syntactically valid dispatch of a plan task to `nodeId`, claimed under `epoch`. */
function dispatchRequest(nodeId: string, epoch: number): DispatchRequestT {
  const endpoint = (name: string) => ({
    type: 'filesystem',
    linkedService: name,
    properties: { root: '/nonexistent/ferry-peer-auth-test' },
    options: { linkedService: name },
  });
  return {
    epoch,
    attempt: {
      attemptId: 'att_peer_auth_test',
      taskId: 'task_peer_auth_test',
      nodeId,
      epoch,
      queuedAt: Date.now(),
      spec: {
        runId: 'run_peer_auth_test',
        activity: 'copy',
        source: endpoint('src'),
        sink: endpoint('dst'),
        work: { kind: 'plan' },
      },
    },
  };
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
  assert.match(text, /^ferry_node_running_tasks 0$/m);
  assert.match(text, /^ferry_node_is_dispatcher 1$/m);

  // The same port in the node list.
  const nodes = (await g.svc.api.call('GET', `/api/v1/gateways/${g.gateway}/nodes`)).nodes;
  assert.equal(`http://${nodes[0].peerAddress}`, base);
});

test("GET /v1/ping needs a fresh signature made with the secret of the node's own gateway", async (t) => {
  const svc = await startService(t);
  const a = await svc.api.call('POST', '/api/v1/gateways', { name: 'gw-a' });
  const b = await svc.api.call('POST', '/api/v1/gateways', { name: 'gw-b' });
  const nodeA = await startNode(t, svc, { name: 'node-a', key: a.key1 });
  const nodeB = await startNode(t, svc, { name: 'node-b', key: b.key1 });
  const regA = registrationOf(nodeA.dataDir);
  const regB = registrationOf(nodeB.dataDir);
  assert.notEqual(regA.peerSecret, regB.peerSecret, 'each gateway has its own peer secret');
  assert.notEqual(regA.gatewayId, regB.gatewayId);
  const baseA = await peerUrlOf(nodeA.dataDir);
  const baseB = await peerUrlOf(nodeB.dataDir);

  assertUnauthorized(await peerCall(baseA, 'GET', '/v1/ping', undefined), 'unsigned');

  assertUnauthorized(
    await peerCall(baseA, 'GET', '/v1/ping', undefined, {
      secret: randomBytes(32).toString('hex'),
      gatewayId: regA.gatewayId,
    }),
    'wrong secret',
  );

  // Gateway B's real secret: valid on B's node, refused by A's node (as B's gateway and as A's).
  const okOnB = await peerCall(baseB, 'GET', '/v1/ping', undefined, {
    secret: regB.peerSecret,
    gatewayId: regB.gatewayId,
  });
  assert.equal(okOnB.status, 200, JSON.stringify(okOnB.body));
  assert.equal(okOnB.body.name, 'node-b');
  assertUnauthorized(
    await peerCall(baseA, 'GET', '/v1/ping', undefined, {
      secret: regB.peerSecret,
      gatewayId: regB.gatewayId,
    }),
    "another gateway's secret and id",
  );
  assertUnauthorized(
    await peerCall(baseA, 'GET', '/v1/ping', undefined, {
      secret: regB.peerSecret,
      gatewayId: regA.gatewayId,
    }),
    "another gateway's secret with this gateway's id",
  );
  assertUnauthorized(
    await peerCall(baseA, 'GET', '/v1/ping', undefined, {
      secret: regA.peerSecret,
      gatewayId: regB.gatewayId,
    }),
    "this gateway's secret with another gateway's id",
  );

  // The replay window: two minutes old, or two minutes ahead, is refused.
  assertUnauthorized(
    await peerCall(baseA, 'GET', '/v1/ping', undefined, {
      secret: regA.peerSecret,
      gatewayId: regA.gatewayId,
      time: Date.now() - 120_000,
    }),
    'two minutes old',
  );
  assertUnauthorized(
    await peerCall(baseA, 'GET', '/v1/ping', undefined, {
      secret: regA.peerSecret,
      gatewayId: regA.gatewayId,
      time: Date.now() + 120_000,
    }),
    'two minutes ahead',
  );

  // The signature covers the path.
  assertUnauthorized(
    await peerCall(baseA, 'GET', '/v1/ping', undefined, {
      secret: regA.peerSecret,
      gatewayId: regA.gatewayId,
      signedPath: '/v1/other',
    }),
    'signed for another path',
  );

  const ok = await peerCall(baseA, 'GET', '/v1/ping', undefined, {
    secret: regA.peerSecret,
    gatewayId: regA.gatewayId,
  });
  assert.equal(ok.status, 200, JSON.stringify(ok.body));
  assert.equal(ok.body.name, 'node-a');
  assert.equal(ok.body.nodeId, regA.nodeId);
  assert.equal(ok.body.gatewayId, regA.gatewayId);
  assert.equal(ok.body.draining, false);

  // Signed but unknown route: authenticated first, then 404.
  const unknown = await peerCall(baseA, 'GET', '/v1/nope', undefined, {
    secret: regA.peerSecret,
    gatewayId: regA.gatewayId,
  });
  assert.equal(unknown.status, 404);
  assert.equal(unknown.body.code, 'not_found');
});

test('POST /v1/dispatch signed correctly but from an older dispatcher epoch is refused with 409 stale_epoch', async (t) => {
  const g = await gatewayWithNodes(t, 2);
  const before = await gatewayView(g.svc, g.gateway);
  assert.ok(before.epoch >= 1, `an elected dispatcher has an epoch (got ${before.epoch})`);
  const victim = g.nodes.find((n) => n.name === before.dispatcher);
  const survivor = g.nodes.find((n) => n.name !== before.dispatcher);
  assert.ok(victim && survivor);
  const reg = registrationOf(survivor.dataDir);
  const base = await peerUrlOf(survivor.dataDir);
  const sign = { secret: reg.peerSecret, gatewayId: reg.gatewayId };

  // Unsigned, or signed over another body: refused before the worker sees it.
  assertUnauthorized(
    await peerCall(base, 'POST', '/v1/dispatch', dispatchRequest(reg.nodeId, before.epoch)),
    'unsigned dispatch',
  );
  assertUnauthorized(
    await peerCall(base, 'POST', '/v1/dispatch', dispatchRequest(reg.nodeId, before.epoch), {
      ...sign,
      signedBody: JSON.stringify(dispatchRequest(reg.nodeId, before.epoch + 1)),
    }),
    'dispatch whose body was changed after signing',
  );
  // Signed, but not a dispatch: the body is checked before anything runs.
  const bad = await peerCall(base, 'POST', '/v1/dispatch', { epoch: before.epoch }, sign);
  assert.equal(bad.status, 400, JSON.stringify(bad.body));
  assert.equal(bad.body.code, 'bad_request');
  assert.match(bad.body.message, /attempt/);

  victim.proc.kill('SIGKILL');
  const after = await eventually(
    `${survivor.name} to take over with a new epoch`,
    async () => {
      const gw = await gatewayView(g.svc, g.gateway);
      return gw.dispatcher === survivor.name && gw.epoch > before.epoch ? gw : undefined;
    },
    30_000,
  );
  assert.ok(after.epoch >= 2);
  // The survivor has heard of the new epoch (its heartbeat answer carries it).
  await eventually(`${survivor.name} to see epoch ${after.epoch}`, () => {
    const s = JSON.parse(readFileSync(join(survivor.dataDir, 'status.json'), 'utf8')) as {
      epoch: number;
      role: string;
    };
    return s.epoch >= after.epoch && s.role === 'dispatcher';
  });

  // A dispatch from the old dispatcher's epoch, correctly signed: fenced off.
  const stale = await peerCall(base, 'POST', '/v1/dispatch', dispatchRequest(reg.nodeId, before.epoch), sign);
  assert.equal(stale.status, 409, JSON.stringify(stale.body));
  assert.equal(stale.body.code, 'stale_epoch');
  assert.match(stale.body.message, new RegExp(`epoch ${before.epoch}\\b`));
  const ping = await peerCall(base, 'GET', '/v1/ping', undefined, sign);
  assert.equal(ping.status, 200);
  assert.equal(ping.body.running, 0, 'nothing was started');
});

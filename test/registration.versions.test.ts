/**
 * Registration cannot be used to stop a gateway: a registration claiming 99.0.0 that never
 * heartbeats does not become the gateway version (only nodes that are up count); a version must be a
 * semantic version (`latest` is a 400 naming the field); unknown fields in a registration or a
 * heartbeat are refused, not ignored; and wrong keys are limited per source address (429 with
 * Retry-After, before the key is looked at, other addresses unaffected).
 */
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { request } from 'node:http';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { ROOT, eventually, startNode, startService, type ServiceHandle } from './helpers/cluster.ts';
import { heartbeatBody, registrationBody } from './helpers/agent-bodies.ts';

const PACKAGE_VERSION = (JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')) as { version: string })
  .version;

interface Answer {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  body: any;
}

/** A JSON POST from a chosen local address (127.0.0.x: another source address for the service). */
function post(
  svc: ServiceHandle,
  path: string,
  body: unknown,
  o: { token?: string; from?: string } = {},
): Promise<Answer> {
  const url = new URL(svc.url);
  return new Promise((resolve, reject) => {
    const req = request(
      {
        host: url.hostname,
        port: url.port,
        method: 'POST',
        path,
        agent: false,
        ...(o.from ? { localAddress: o.from } : {}),
        headers: {
          'content-type': 'application/json',
          ...(o.token ? { authorization: `Bearer ${o.token}` } : {}),
        },
      },
      (res) => {
        let text = '';
        res.setEncoding('utf8');
        res.on('data', (c: string) => (text += c));
        res.on('end', () =>
          resolve({
            status: res.statusCode ?? 0,
            headers: res.headers,
            body: text ? JSON.parse(text) : undefined,
          }),
        );
      },
    );
    req.on('error', reject);
    req.end(JSON.stringify(body));
  });
}

const registration = (key: string, name: string, version = PACKAGE_VERSION) =>
  registrationBody(key, name, version);

const heartbeat = (version = PACKAGE_VERSION) => heartbeatBody(version);

async function nodesView(svc: ServiceHandle): Promise<any> {
  return svc.api.call('GET', '/api/v1/gateways/gw/nodes');
}

describe('registration', { concurrency: 2 }, () => {
  test('a registration claiming 99.0.0 that never heartbeats does not set the gateway version', async (t) => {
    const svc = await startService(t);
    const { key1 } = await svc.api.call('POST', '/api/v1/gateways', { name: 'gw' });
    const real = await startNode(t, svc, { name: 'real-1', key: key1 });
    assert.ok(real.proc.alive);
    await eventually('real-1 Online', async () =>
      (await nodesView(svc)).nodes.some((n: any) => n.name === 'real-1' && n.status === 'Online'),
    );

    const fake = await post(svc, '/api/v1/agent/register', registration(key1, 'fake', '99.0.0'));
    assert.equal(fake.status, 201, JSON.stringify(fake.body));

    // While the fake is still "recent" (before offlineAfterMs) and after it went Offline: the real
    // node stays Online, keeps the dispatcher role, and the gateway version is the real node's.
    const until = Date.now() + 7000;
    let sawFakeOffline = false;
    while (Date.now() < until) {
      const v = await nodesView(svc);
      const r = v.nodes.find((n: any) => n.name === 'real-1');
      const f = v.nodes.find((n: any) => n.name === 'fake');
      assert.equal(v.gateway.version, PACKAGE_VERSION, JSON.stringify(v.gateway));
      assert.equal(r.status, 'Online', JSON.stringify(r));
      assert.equal(r.role, 'dispatcher', JSON.stringify(r));
      assert.notEqual(v.gateway.status, 'Offline', JSON.stringify(v.gateway));
      assert.notEqual(f.status, 'Online', 'a registration that never heartbeats is never Online');
      if (f.status === 'Offline') sawFakeOffline = true;
      await sleep(250);
    }
    assert.ok(sawFakeOffline, 'the fake went Offline');
    // Another real node at the real version still registers: the fake sets no bar.
    await startNode(t, svc, { name: 'real-2', key: key1 });
    await eventually('real-2 Online', async () =>
      (await nodesView(svc)).nodes.some((n: any) => n.name === 'real-2' && n.status === 'Online'),
    );
  });

  test('versions must be semantic versions: `latest` is a 400 naming the field, for registration and heartbeat', async (t) => {
    const svc = await startService(t);
    const { key1 } = await svc.api.call('POST', '/api/v1/gateways', { name: 'gw' });
    const meaning = 'must be a semantic version, MAJOR.MINOR.PATCH such as 1.4.0';
    for (const version of ['latest', '1.2', 'v1.2.3', '01.2.3', '1.2.3-', '', `${'9'.repeat(70)}.0.0`]) {
      const r = await post(svc, '/api/v1/agent/register', registration(key1, 'n1', version));
      assert.equal(r.status, 400, `${JSON.stringify(version)}: ${JSON.stringify(r.body)}`);
      assert.equal(r.body.code, 'bad_request');
      assert.match(r.body.message, /^body\/version: /, version);
      if (version.length > 0 && version.length <= 64)
        assert.equal(r.body.message, `body/version: ${meaning}`, version);
    }
    assert.deepEqual((await nodesView(svc)).nodes, [], 'nothing registered');

    const ok = await post(svc, '/api/v1/agent/register', registration(key1, 'n1', '1.0.0-rc.1+build.7'));
    assert.equal(ok.status, 201, JSON.stringify(ok.body));
    const hb = await post(svc, '/api/v1/agent/heartbeat', heartbeat('latest'), { token: ok.body.nodeToken });
    assert.equal(hb.status, 400, JSON.stringify(hb.body));
    assert.equal(hb.body.message, `body/version: ${meaning}`);
    assert.equal(
      (await nodesView(svc)).nodes[0].version,
      '1.0.0-rc.1+build.7',
      'the stored version is unchanged',
    );

    // A real node told to report `latest` stops with the service's reason.
    const node = await startNode(t, svc, {
      name: 'n2',
      key: key1,
      env: { FERRY_NODE_VERSION: 'latest' },
      wait: false,
    });
    assert.equal((await node.proc.exited).code, 1, node.proc.output);
    assert.match(node.proc.output, new RegExp(`ferry: body/version: ${meaning.replaceAll('.', '\\.')}`));
  });

  test('unknown fields in a registration or a heartbeat are refused, not ignored', async (t) => {
    const svc = await startService(t);
    const { key1 } = await svc.api.call('POST', '/api/v1/gateways', { name: 'gw' });
    for (const [what, body, field] of [
      ['a top-level field', { ...registration(key1, 'n1'), admin: true }, 'admin'],
      ['a gateway to join', { ...registration(key1, 'n1'), gatewayId: 'gw_x' }, 'gatewayId'],
    ] as const) {
      const r = await post(svc, '/api/v1/agent/register', body);
      assert.equal(r.status, 400, `${what}: ${JSON.stringify(r.body)}`);
      assert.equal(r.body.message, `body/${field}: is not a known field`, what);
    }
    // Nor may a known field be of any size.
    const longHost = await post(svc, '/api/v1/agent/register', {
      ...registration(key1, 'n1'),
      peerHost: 'h'.repeat(300),
    });
    assert.equal(longHost.status, 400, JSON.stringify(longHost.body));
    assert.match(longHost.body.message, /^body\/peerHost: /);
    const keyGateway = await post(svc, '/api/v1/agent/key-gateway', { key: key1, extra: 1 });
    assert.equal(keyGateway.status, 400, JSON.stringify(keyGateway.body));
    assert.equal(keyGateway.body.message, 'body/extra: is not a known field');
    assert.deepEqual((await nodesView(svc)).nodes, [], 'nothing registered');

    const ok = await post(svc, '/api/v1/agent/register', registration(key1, 'n1'));
    assert.equal(ok.status, 201);
    const token = ok.body.nodeToken;
    const base = heartbeat();
    for (const [what, body, field] of [
      ['a top-level field', { ...base, epoch: 99 }, 'epoch'],
      ['a field inside metrics', { ...base, metrics: { ...base.metrics, gpu: 1 } }, 'metrics/gpu'],
      [
        'a field inside a reach entry',
        { ...base, reach: [{ nodeId: 'x', ok: true, trusted: true }] },
        'reach/0/trusted',
      ],
    ] as const) {
      const r = await post(svc, '/api/v1/agent/heartbeat', body, { token });
      assert.equal(r.status, 400, `${what}: ${JSON.stringify(r.body)}`);
      assert.equal(r.body.message, `body/${field}: is not a known field`, what);
    }
    const good = await post(svc, '/api/v1/agent/heartbeat', base, { token });
    assert.equal(good.status, 200, JSON.stringify(good.body));
  });

  test('wrong keys are limited per address: 429 with Retry-After, even for a right key, then allowed again', async (t) => {
    const svc = await startService(t);
    const { key1 } = await svc.api.call('POST', '/api/v1/gateways', { name: 'gw' });
    const from = '127.0.0.1';
    // Refusals of another kind (a taken name) do not count against the address.
    const first = await post(svc, '/api/v1/agent/register', registration(key1, 'first'), { from });
    assert.equal(first.status, 201);
    const taken = await post(svc, '/api/v1/agent/register', registration(key1, 'first'), { from });
    assert.equal(taken.status, 403);
    assert.match(taken.body.message, /already has a node named "first"/);
    for (let i = 0; i < 10; i++) {
      const path = i % 2 === 0 ? '/api/v1/agent/register' : '/api/v1/agent/key-gateway';
      const body = i % 2 === 0 ? registration(`ferry_gw_guess${i}`, `n${i}`) : { key: `ferry_gw_guess${i}` };
      const r = await post(svc, path, body, { from });
      assert.equal(r.status, 403, `attempt ${i + 1}: ${JSON.stringify(r.body)}`);
      assert.equal(r.body.code, 'registration_refused');
    }

    for (const [path, body] of [
      ['/api/v1/agent/register', registration('ferry_gw_guess11', 'n11')],
      ['/api/v1/agent/register', registration(key1, 'right-key')], // the right key: refused unread
      ['/api/v1/agent/key-gateway', { key: key1 }],
    ] as const) {
      const r = await post(svc, path, body, { from });
      assert.equal(r.status, 429, `${path}: ${JSON.stringify(r.body)}`);
      assert.equal(r.body.code, 'rate_limited');
      assert.equal(r.body.retryable, true);
      const retryAfter = Number(r.headers['retry-after']);
      assert.ok(
        Number.isInteger(retryAfter) && retryAfter >= 1 && retryAfter <= 60,
        `Retry-After ${r.headers['retry-after']}`,
      );
      assert.equal(r.body.message, `too many failed key attempts from ${from}: try again in ${retryAfter} s`);
    }
    assert.deepEqual(
      (await nodesView(svc)).nodes.map((n: any) => n.name),
      ['first'],
      'the right key was not taken while limited',
    );

    // Another address is not limited.
    const other = await post(svc, '/api/v1/agent/register', registration(key1, 'other'), {
      from: '127.0.0.2',
    });
    assert.equal(other.status, 201, JSON.stringify(other.body));

    // After Retry-After, the address may try again (one more failure's worth).
    const limited = await post(svc, '/api/v1/agent/key-gateway', { key: key1 }, { from });
    await sleep(Number(limited.headers['retry-after']) * 1000 + 200);
    const again = await post(svc, '/api/v1/agent/register', registration(key1, 'right-key'), { from });
    assert.equal(again.status, 201, JSON.stringify(again.body));
  });
});

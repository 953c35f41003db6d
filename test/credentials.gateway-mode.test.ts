/**
 * Credentials held by the gateway, across real node processes and a real MariaDB whose user has a
 * password only the test knows: set through the service (which relays what it cannot open) or
 * straight on a node, synced by the dispatcher to every node, used by a copy; the password appears in
 * no service log, API response, store file, run record, nor on the wire between nodes and service.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { eventually, startNode, startService, tempDir, type NodeHandle } from './helpers/cluster.ts';
import { gatewayWithNodes, waitRun, type Gateway } from './helpers/scenario.ts';
import { assertAbsent } from './helpers/markers.ts';
import { recordingRelay } from './helpers/recording-relay.ts';
import {
  ROWS,
  copyItems,
  mariaLinkedService,
  mariaWithUser,
  nodesOf,
  setPassword,
} from './helpers/gateway-credentials.ts';
import { GRANT_HEADER, sealCredential, setBoxId } from '../src/protocol/credentials.ts';
import { sealSecrets } from '../src/protocol/sealed-secrets.ts';

test('set through the service, the password reaches every node sealed, runs a copy, and is seen nowhere else', async (t) => {
  const password = `pw-${randomBytes(9).toString('base64url')}`;
  const m = await mariaWithUser(t, password);
  const svc = await startService(t);
  // Nodes -> service, and the CLI -> service, through a recording relay.
  const relay = await recordingRelay(
    t,
    { host: '127.0.0.1', port: 0 },
    { host: '127.0.0.1', port: svc.port },
  );
  const viaRelay = { url: `http://127.0.0.1:${relay.port}`, token: svc.token };
  const created = await svc.api.call('POST', '/api/v1/gateways', { name: 'gw' });
  const root = tempDir(t, 'ferry-data-');
  const nodes: NodeHandle[] = [];
  for (const name of ['node-1', 'node-2', 'node-3'])
    nodes.push(await startNode(t, viaRelay, { name, key: created.key1, allowPaths: [root] }));
  const g: Gateway = { svc, gateway: 'gw', key: created.key1, nodes, root };
  await eventually(
    '3 nodes Online',
    async () => (await nodesOf(g)).every((n) => n.status === 'Online') || undefined,
  );

  // The service refuses to be handed the secret of a linked service kept in the gateway.
  const refused = await svc.api.raw('POST', '/api/v1/linked-services', {
    name: 'maria',
    type: 'mysql',
    gateway: 'gw',
    credentials: 'gateway',
    properties: { host: '127.0.0.1', user: m.user, database: m.db, password },
  });
  assert.equal(refused.status, 400);
  assert.match(refused.body.message, /password must not be sent to the service/);
  assert.match(refused.body.hint, /ferry credential set maria/);
  await mariaLinkedService(g, m);
  const ls = await svc.api.call('GET', '/api/v1/linked-services/maria');
  assert.equal(ls.credentials, 'gateway');
  assert.deepEqual(ls.secrets, []);

  // Before any credential is set, a copy fails at once, saying what to do.
  const early = await waitRun(g, await copyItems(g, 'early'));
  assert.equal(early.status, 'failed');
  assert.match(early.error, /keeps its credentials in gateway "gw", and no node that is up holds them/);

  // A wrong password first: set, synced, used, and refused by MariaDB (the values really are used).
  const wrong = await setPassword(t, viaRelay, `${password}-wrong`);
  assert.equal(wrong.code, 0, wrong.stderr);
  assert.match(
    wrong.stdout,
    /version 1 set through the service \(relayed sealed\); held by node-1, node-2, node-3 \(3 of 3 nodes up\)/,
  );
  const denied = await waitRun(g, await copyItems(g, 'denied'));
  assert.equal(denied.status, 'failed');
  assert.match(JSON.stringify(denied.tasks), /Access denied/);

  const right = await setPassword(t, viaRelay, password);
  assert.equal(right.code, 0, right.stderr);
  assert.match(right.stdout, /version 2 .* held by node-1, node-2, node-3/);
  // It says what it bound the values to, for the operator to check.
  assert.match(
    right.stderr,
    new RegExp(
      `binding maria's credentials to mysql host="127.0.0.1" port=3306 user="${m.user}" database="${m.db}"`,
    ),
  );
  for (const n of await nodesOf(g)) {
    assert.equal(n.status, 'Online', n.statusHint);
    assert.deepEqual(n.credentials, { status: 'in sync', gatewayKey: true, versions: { maria: 2 } });
  }
  const run = await waitRun(g, await copyItems(g, 'ok'));
  assert.equal(run.status, 'succeeded', JSON.stringify(run.error));
  assert.equal(run.progress.rows, ROWS);

  // Kept encrypted at rest on every node, in files only the node's user may read.
  for (const n of nodes) {
    for (const f of ['credentials.enc', 'credentials.key']) {
      assert.equal(statSync(join(n.dataDir, f)).mode & 0o777, 0o600, `${n.name} ${f}`);
      assertAbsent(`${n.name} ${f}`, readFileSync(join(n.dataDir, f)), [password]);
    }
  }

  // Nowhere on the service's side: log, API answers, store files, run records, audit, the wire.
  assertAbsent('service log', svc.proc.output, [password]);
  for (const path of [
    '/api/v1/linked-services',
    '/api/v1/linked-services/maria',
    `/api/v1/runs/${run.id}`,
    `/api/v1/runs/${denied.id}`,
    '/api/v1/gateways/gw',
    '/api/v1/gateways/gw/nodes',
    '/api/v1/gateways/gw/events',
    '/api/v1/audit',
  ])
    assertAbsent(`GET ${path}`, JSON.stringify(await svc.api.call('GET', path)), [password]);
  for (const f of readdirSync(svc.dataDir))
    assertAbsent(`service file ${f}`, readFileSync(join(svc.dataDir, f)), [password]);
  assertAbsent('the wire between nodes (and CLI) and service', relay.recorded(), [password]);
  assert.ok(relay.recorded().includes('x25519-aes256gcm.'), 'the relay did carry the sealed box');
  // The audit log names who set which version; never the box.
  const audit = (await svc.api.call('GET', '/api/v1/audit')).entries;
  const relayed = audit.filter((e: any) => e.route === '/api/v1/linked-services/{name}/credentials');
  assert.deepEqual(
    relayed.map((e: any) => e.details.version),
    [2, 1], // newest first
  );
  assert.equal(JSON.stringify(audit).includes('x25519-aes256gcm.'), false);
});

test('set straight on a node (--node URL), never through the service; a grant is refused when forged, reused, for another gateway or another linked service', async (t) => {
  const password = `pw-${randomBytes(9).toString('base64url')}`;
  const m = await mariaWithUser(t, password);
  const svc = await startService(t);
  const created = await svc.api.call('POST', '/api/v1/gateways', { name: 'gw' });
  const root = tempDir(t, 'ferry-data-');
  const nodes: NodeHandle[] = [];
  for (const name of ['node-1', 'node-2'])
    nodes.push(await startNode(t, svc, { name, key: created.key1, allowPaths: [root] }));
  const g: Gateway = { svc, gateway: 'gw', key: created.key1, nodes, root };
  await mariaLinkedService(g, m);
  const peerUrl = async (name: string): Promise<string> => {
    const n = (await nodesOf(g)).find((x) => x.name === name);
    return `http://${n.peerAddress}`;
  };
  await eventually(
    'every node holds the gateway key',
    async () =>
      (await nodesOf(g)).every((n) => n.status === 'Online' && n.credentials.gatewayKey) || undefined,
  );
  const worker = (await nodesOf(g)).find((n) => n.role === 'worker');
  const url = await peerUrl(worker.name);

  const res = await setPassword(t, svc, password, ['--node', url]);
  assert.equal(res.code, 0, res.stderr);
  assert.match(
    res.stdout,
    new RegExp(
      `version 1 set through node ${worker.name} \\(${url.replace(/[.]/g, '\\.')}\\); held by node-1, node-2`,
    ),
  );
  const run = await waitRun(g, await copyItems(g, 'direct'));
  assert.equal(run.status, 'succeeded', JSON.stringify(run.error));
  // The service issued the grant and saw no box: no relay was asked of it.
  const routes = (await svc.api.call('GET', '/api/v1/audit')).entries.map((e: any) => e.route);
  assert.ok(routes.includes('/api/v1/linked-services/{name}/credential-grant'));
  assert.equal(routes.includes('/api/v1/linked-services/{name}/credentials'), false);
  assertAbsent('service log', svc.proc.output, [password]);

  // Refusals, each before anything is stored.
  const endpointOf = async (name: string) => {
    const ls = await svc.api.call('GET', `/api/v1/linked-services/${name}`);
    return { type: ls.type as string, properties: ls.properties as Record<string, unknown> };
  };
  const grantFor = (node?: string): Promise<any> =>
    svc.api.call('POST', '/api/v1/linked-services/maria/credential-grant', node ? { node } : {});
  const grant = await grantFor(worker.name);
  const box = (values: Record<string, unknown>, version = grant.version, lsName = 'maria'): string =>
    sealSecrets(grant.gatewayKey, values, setBoxId(grant.gatewayId, lsName, version), 'credential');
  const send = async (
    headers: Record<string, string>,
    body: unknown,
  ): Promise<{ status: number; body: any }> => {
    const r = await fetch(`${url}/admin/credentials`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', ...headers },
      body: JSON.stringify(body),
    });
    return { status: r.status, body: await r.json() };
  };
  const good = { linkedService: 'maria', version: grant.version, box: box({ password: 'x-other' }) };
  const none = await send({}, good);
  assert.equal(none.status, 401);
  assert.match(none.body.message, /no grant/);
  // A grant signed by anyone but the service.
  const [payload] = grant.grant.split('.');
  const forged = await send({ [GRANT_HEADER]: `${payload}.${randomBytes(64).toString('base64url')}` }, good);
  assert.equal(forged.status, 401);
  assert.match(forged.body.message, /not signed by the service/);
  // The grant for another linked service's version.
  const other = await send({ [GRANT_HEADER]: grant.grant }, { ...good, linkedService: 'out' });
  assert.equal(other.status, 401);
  // (that request used the grant up) A fresh grant, then used twice.
  // A grant for the relay (no node), or for the other node: refused here.
  const otherNode = (await nodesOf(g)).find((n) => n.name !== worker.name);
  for (const [which, other] of [
    ['relay', await grantFor()],
    ['the other node', await grantFor(otherNode.name)],
  ]) {
    const r = await send(
      { [GRANT_HEADER]: other.grant },
      { linkedService: 'maria', version: other.version, box: box({ password: 'x-other' }, other.version) },
    );
    assert.equal(r.status, 401, which);
    assert.match(r.body.message, /the grant is for another node/, which);
  }
  const g2 = await grantFor(worker.name);
  const body2 = {
    linkedService: 'maria',
    version: g2.version,
    box: sealCredential(g2.gatewayKey, g2, { values: { password }, endpoint: await endpointOf('maria') }),
  };
  // Values sealed without the endpoint they are for: refused (a grant is used up by it).
  const g3 = await grantFor(worker.name);
  const unbound = await send(
    { [GRANT_HEADER]: g3.grant },
    {
      linkedService: 'maria',
      version: g3.version,
      box: sealSecrets(
        g3.gatewayKey,
        { password },
        setBoxId(g3.gatewayId, 'maria', g3.version),
        'credential',
      ),
    },
  );
  assert.equal(unbound.status, 400);
  assert.match(unbound.body.message, /not bound to an endpoint/);
  assert.equal((await send({ [GRANT_HEADER]: g2.grant }, body2)).status, 200);
  const reused = await send({ [GRANT_HEADER]: g2.grant }, body2);
  assert.equal(reused.status, 401);
  assert.match(reused.body.message, /already used/);
  // A grant of another gateway's linked service, taken to this gateway's node.
  await svc.api.call('POST', '/api/v1/gateways', { name: 'gw-b' });
  const nb = await startNode(t, svc, {
    name: 'node-b',
    key: (await svc.api.call('GET', '/api/v1/gateways/gw-b/keys')).key1,
  });
  void nb;
  await svc.api.call('POST', '/api/v1/linked-services', {
    name: 'maria-b',
    type: 'mysql',
    gateway: 'gw-b',
    credentials: 'gateway',
    properties: { host: '127.0.0.1', user: m.user, database: m.db },
  });
  const gb = await eventually('gw-b has a key', async () => {
    const r = await svc.api.raw('POST', '/api/v1/linked-services/maria-b/credential-grant', {
      node: 'node-b',
    });
    return r.status === 201 ? r.body : undefined;
  });
  const foreign = await send(
    { [GRANT_HEADER]: gb.grant },
    {
      linkedService: 'maria-b',
      version: gb.version,
      box: sealSecrets(
        gb.gatewayKey,
        { password },
        setBoxId(gb.gatewayId, 'maria-b', gb.version),
        'credential',
      ),
    },
  );
  assert.equal(foreign.status, 401);
  assert.match(foreign.body.message, /another gateway/);
  // What the nodes hold: version 5 (from g2), nothing from the refused ones (g3 is version 6).
  await eventually(
    'both nodes hold version 5',
    async () => (await nodesOf(g)).every((n) => n.credentials.versions.maria === 5) || undefined,
  );
});

test('with the gateway in tls mode, a credential set straight on a node goes over TLS (the CLI needs no client certificate; its grant is its proof)', async (t) => {
  const password = `pw-${randomBytes(9).toString('base64url')}`;
  const m = await mariaWithUser(t, password);
  const g = await gatewayWithNodes(t, 2);
  await mariaLinkedService(g, m);
  await g.svc.api.call('PATCH', '/api/v1/gateways/gw', { encryption: 'tls' });
  await eventually(
    'both nodes TLS only, Online, with the gateway key',
    async () =>
      (await nodesOf(g)).every(
        (n) => n.transport === 'tls' && n.status === 'Online' && n.credentials.gatewayKey,
      ) || undefined,
    30_000,
  );
  const worker = (await nodesOf(g)).find((n) => n.role === 'worker');
  const node = g.nodes.find((n) => n.name === worker.name);
  assert.ok(node);
  const ca = join(node.dataDir, 'tls', 'ca.pem');
  // Plain HTTP is refused by a TLS-only node, and says so.
  const plain = await setPassword(t, g.svc, password, ['--node', `http://${worker.peerAddress}`]);
  assert.notEqual(plain.code, 0);
  assert.match(plain.stderr, /over TLS only/);
  // By the node's name: sent to its advertised address, over https since it runs TLS only.
  const res = await setPassword(t, g.svc, password, ['--node', worker.name, '--node-ca', ca]);
  assert.equal(res.code, 0, res.stderr);
  assert.match(res.stdout, new RegExp(`set through node ${worker.name} \\(https://`));
  assert.match(res.stdout, /held by node-1, node-2/);
  const run = await waitRun(g, await copyItems(g, 'over-tls'));
  assert.equal(run.status, 'succeeded', JSON.stringify(run.error));
});

/**
 * `ferry linked-service test NAME [--node N]`: a node of the gateway connects to the store with the
 * linked service's settings and says whether it can read (and write, for a sink) and, if not, why.
 * Real node processes, a real PostgreSQL and MariaDB; and a hand-driven node for what the service
 * hands out (sealed secrets, who may answer, a node that never answers).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, mkdirSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import pg from 'pg';
import { ADMIN_TOKEN, cli, eventually, startService } from './helpers/cluster.ts';
import { gatewayWithNodes } from './helpers/scenario.ts';
import { heartbeatBody, registrationBody } from './helpers/agent-bodies.ts';
import { generateNodeKeys } from '../src/protocol/node-keys.ts';
import { openSecrets } from '../src/protocol/sealed-secrets.ts';

const PG = { host: '127.0.0.1', port: 5432, database: 'test', user: 'postgres' };

test('a node tests reading and writing, names what failed and why, and never shows a secret', async (t) => {
  const g = await gatewayWithNodes(t, 2);
  const ferry = (...args: string[]) => cli(['--service', g.svc.url, '--token', ADMIN_TOKEN, ...args]);
  const make = (name: string, type: string, properties: Record<string, unknown>) =>
    g.svc.api.call('POST', '/api/v1/linked-services', { name, type, gateway: g.gateway, properties });

  // A folder under --allow-path: reading works; writing is tested when asked, and leaves nothing.
  mkdirSync(join(g.root, 'in'));
  await make('files', 'filesystem', { root: join(g.root, 'in') });
  const read = await ferry('linked-service', 'test', 'files');
  assert.equal(read.code, 0, read.stderr);
  assert.match(read.stdout, /^linked service files \(filesystem\) on gateway gw, tested from node node-1$/m);
  assert.match(read.stdout, /^read +ok +.+\(\d+ ms\)$/m);
  assert.match(read.stdout, /^write +- +no pipeline writes to it \(ask for a write test with --write\)$/m);
  const both = await ferry('linked-service', 'test', 'files', '--write', '--node', 'node-2');
  assert.equal(both.code, 0, both.stderr);
  assert.match(both.stdout, /tested from node node-2$/m);
  assert.match(both.stdout, /^write +ok +.+\(\d+ ms\)$/m);
  assert.deepEqual(
    readdirSync(join(g.root, 'in')).filter((f) => f !== '.ferry-staging'),
    [],
    'the write test left nothing in the folder',
  );
  if (existsSync(join(g.root, 'in', '.ferry-staging')))
    assert.deepEqual(readdirSync(join(g.root, 'in', '.ferry-staging')), []);

  // A folder the nodes may not touch: the reason names --allow-path.
  await make('elsewhere', 'filesystem', { root: '/var/lib' });
  const outside = await ferry('linked-service', 'test', 'elsewhere');
  assert.equal(outside.code, 1);
  assert.match(outside.stdout, /^read +FAILED +tried to read from filesystem linked service "elsewhere"/m);
  assert.match(outside.stderr, /^ferry: node node-1 cannot read from linked service elsewhere: /m);
  assert.match(outside.stderr, /--allow-path/);

  // PostgreSQL: a pipeline writes to it, so writing is tested without being asked; the probe table
  // is gone afterwards.
  await make('pg', 'postgres', { ...PG, password: 'pg-secret-marker-1' });
  await g.svc.api.call('PUT', '/api/v1/pipelines', {
    name: 'load',
    activities: [
      {
        name: 'load',
        source: { linkedService: 'files', path: '.', format: 'csv' },
        sink: { linkedService: 'pg', table: 'public.loaded', mode: 'create' },
      },
    ],
  });
  const pgJson = await ferry('linked-service', 'test', 'pg', '--json');
  assert.equal(pgJson.code, 0, pgJson.stderr);
  const result = JSON.parse(pgJson.stdout);
  assert.equal(result.ok, true);
  assert.equal(result.read.ok, true);
  assert.match(result.read.detail, /PostgreSQL/);
  assert.equal(result.write.ok, true, JSON.stringify(result.write));
  assert.equal(result.writeReason, 'pipelines write to it: load');
  const probes = await withPg((c) =>
    c.query(`SELECT relname FROM pg_class WHERE relname LIKE 'ferry_connection_test%'`),
  );
  assert.deepEqual(probes.rows, [], 'no probe table is left behind');
  const onlyRead = await ferry('linked-service', 'test', 'pg', '--no-write');
  assert.equal(onlyRead.code, 0, onlyRead.stderr);
  assert.match(onlyRead.stdout, /^write +- +not asked for$/m);

  // A role that does not exist (this PostgreSQL trusts every password on 127.0.0.1).
  await make('pg-nobody', 'postgres', { ...PG, user: 'no_such_role', password: 'pg-secret-marker-2' });
  const nobody = await ferry('linked-service', 'test', 'pg-nobody', '--write');
  assert.equal(nobody.code, 1);
  assert.match(nobody.stderr, /no_such_role/);
  assert.match(nobody.stdout, /^write +- +not tried: reading failed$/m);

  // MariaDB with a wrong password: refused, said so, and the password is nowhere.
  await make('maria', 'mysql', {
    host: '127.0.0.1',
    database: 'test',
    user: 'root',
    password: 'maria-secret-marker-3',
  });
  const denied = await ferry('linked-service', 'test', 'maria', '--json');
  assert.equal(denied.code, 1);
  const deniedBody = JSON.parse(denied.stdout);
  assert.equal(deniedBody.read.ok, false);
  assert.equal(deniedBody.read.error.code, 'store_auth', JSON.stringify(deniedBody.read));
  assert.match(deniedBody.read.error.message, /denied/i);

  // A store that is not listening.
  await make('pg-closed', 'postgres', { ...PG, port: 1 });
  const closed = await ferry('linked-service', 'test', 'pg-closed', '--json');
  assert.equal(closed.code, 1);
  assert.equal(JSON.parse(closed.stdout).read.error.code, 'store_unreachable');

  // Which node: an unknown one, and one that is down, are refused before anything is asked.
  const unknown = await ferry('linked-service', 'test', 'files', '--node', 'node-9');
  assert.equal(unknown.code, 1);
  assert.match(unknown.stderr, /gateway "gw" has no node "node-9"/);
  const missing = await ferry('linked-service', 'test', 'no-such-service');
  assert.equal(missing.code, 1);
  assert.match(missing.stderr, /no-such-service/);
  const badTimeout = await ferry('linked-service', 'test', 'files', '--timeout', '0');
  assert.equal(badTimeout.code, 1);
  assert.match(badTimeout.stderr, /--timeout takes whole seconds from 1 to 300/);
  g.nodes[1]!.proc.kill('SIGKILL');
  await eventually('node-2 Offline', async () => {
    const res = await g.svc.api.call('GET', `/api/v1/gateways/${g.gateway}/nodes`);
    return res.nodes.find((n: { name: string }) => n.name === 'node-2')?.status === 'Offline';
  });
  const down = await ferry('linked-service', 'test', 'files', '--node', 'node-2');
  assert.equal(down.code, 1);
  assert.match(down.stderr, /node "node-2" is Offline \(last seen \d+ s ago\)/);
  const other = await ferry('linked-service', 'test', 'files');
  assert.equal(other.code, 0, other.stderr);
  assert.match(other.stdout, /tested from node node-1$/m);

  // No secret in anything printed, nor in the service's log.
  const printed = [pgJson, nobody, denied, onlyRead].map((r) => r.stdout + r.stderr).join('\n');
  const log = g.svc.proc.output + g.nodes.map((n) => n.proc.output).join('\n');
  for (const marker of ['pg-secret-marker-1', 'pg-secret-marker-2', 'maria-secret-marker-3']) {
    assert.equal(printed.includes(marker), false, `${marker} printed`);
    assert.equal(log.includes(marker), false, `${marker} in a log`);
  }
});

test('the service hands a test only to its node, sealed to it, and waits for that node alone', async (t) => {
  const svc = await startService(t);
  const { key1 } = await svc.api.call('POST', '/api/v1/gateways', { name: 'gw' });
  const keys = generateNodeKeys();
  const pub = { signPublicKey: keys.signPublicKey, sealPublicKey: keys.sealPublicKey };
  const reg = await svc.api.call('POST', '/api/v1/agent/register', {
    ...registrationBody(key1, 'fake'),
    ...pub,
  });
  const other = await svc.api.call('POST', '/api/v1/agent/register', registrationBody(key1, 'other'));
  const beat = async (token: string, body: object) =>
    (await svc.api.raw('POST', '/api/v1/agent/heartbeat', body, token)).body;
  const fakeBeat = () => beat(reg.nodeToken, { ...heartbeatBody(), ...pub });
  await fakeBeat();
  await beat(other.nodeToken, heartbeatBody());
  await svc.api.call('POST', '/api/v1/linked-services', {
    name: 'pg',
    type: 'postgres',
    gateway: 'gw',
    properties: { ...PG, password: 'sealed-marker-4' },
  });

  // Asked of "fake": its next heartbeat reply carries the test, secrets sealed to it for this test.
  const asked = svc.api.raw('POST', '/api/v1/linked-services/pg/test', { node: 'fake', timeoutSeconds: 20 });
  const handed = await eventually('the test in a heartbeat reply', async () => {
    const reply = await fakeBeat();
    return reply.connectionTests?.length ? reply : undefined;
  });
  assert.equal(JSON.stringify(handed).includes('sealed-marker-4'), false, 'no secret in the clear');
  const [ct] = handed.connectionTests;
  assert.equal(ct.write, false);
  assert.equal(ct.endpoint.linkedService, 'pg');
  assert.deepEqual(openSecrets(keys.sealPrivateKey, ct.endpoint.sealedSecrets, ct.testId, 'test'), {
    password: 'sealed-marker-4',
  });
  assert.throws(() => openSecrets(keys.sealPrivateKey, ct.endpoint.sealedSecrets, ct.testId, 'source'));
  assert.throws(() => openSecrets(keys.sealPrivateKey, ct.endpoint.sealedSecrets, 'at_other', 'test'));
  assert.equal((await fakeBeat()).connectionTests, undefined, 'handed out once (until a redelivery)');
  assert.equal((await beat(other.nodeToken, heartbeatBody())).connectionTests, undefined);

  // Only the node it was handed to may answer, and only once.
  const answer = { read: { ok: true, detail: 'connected (by hand)', ms: 3 } };
  const path = `/api/v1/agent/connection-tests/${ct.testId}`;
  assert.equal((await svc.api.raw('POST', path, answer, other.nodeToken)).status, 404);
  assert.equal((await svc.api.raw('POST', path, answer, ADMIN_TOKEN)).status, 401);
  assert.equal((await svc.api.raw('POST', path, { read: { ok: true } }, reg.nodeToken)).status, 400);
  assert.equal((await svc.api.raw('POST', path, answer, reg.nodeToken)).status, 200);
  assert.equal((await svc.api.raw('POST', path, answer, reg.nodeToken)).status, 404);
  const res = await asked;
  assert.equal(res.status, 200, JSON.stringify(res.body));
  assert.deepEqual(res.body, {
    linkedService: 'pg',
    type: 'postgres',
    gateway: 'gw',
    node: 'fake',
    ok: true,
    read: answer.read,
    write: null,
    writeReason: 'no pipeline writes to it (ask for a write test with --write)',
  });

  // A node that never answers: the call ends at its timeout with a clear error.
  const silent = await svc.api.raw('POST', '/api/v1/linked-services/pg/test', {
    node: 'other',
    timeoutSeconds: 2,
  });
  assert.equal(silent.status, 503);
  assert.equal(silent.body.code, 'unavailable');
  assert.match(silent.body.message, /node "other" did not answer the connection test within 2 s/);
  // Bad requests: unknown fields, a timeout out of range.
  for (const body of [{ nodes: 'fake' }, { timeoutSeconds: 0 }, { timeoutSeconds: 301 }, { write: 'yes' }])
    assert.equal((await svc.api.raw('POST', '/api/v1/linked-services/pg/test', body)).status, 400);
});

async function withPg<T>(work: (c: pg.Client) => Promise<T>): Promise<T> {
  const c = new pg.Client(PG);
  await c.connect();
  try {
    return await work(c);
  } finally {
    await c.end();
  }
}

/**
 * The service's REST API and the `ferry gateway` CLI against a real `ferry service` process: open
 * endpoints, bearer-token authentication (given or generated), the gateway resource, its keys (a
 * regenerated key stops working for registration at once) and the CLI's exit codes.
 */
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import {
  ADMIN_TOKEN,
  Api,
  cli,
  eventually,
  startNode,
  startService,
  type ServiceHandle,
} from './helpers/cluster.ts';
import { registrationBody } from './helpers/agent-bodies.ts';

async function nodeNames(svc: ServiceHandle, gateway: string): Promise<string[]> {
  const res = await svc.api.call('GET', `/api/v1/gateways/${gateway}/nodes`);
  return res.nodes.map((n: { name: string }) => n.name);
}

// Each test has its own service and data dirs, so two run at once (most of the time is waiting).
describe('service REST API and `ferry gateway`', { concurrency: 2 }, () => {
  test('GET /healthz, /api/v1/openapi.json and /metrics answer without a token', async (t) => {
    const svc = await startService(t);

    const health = await fetch(`${svc.url}/healthz`);
    assert.equal(health.status, 200);
    const h = (await health.json()) as { status: string; version: string };
    assert.equal(h.status, 'ok');
    assert.equal(typeof h.version, 'string');

    const spec = await svc.api.raw('GET', '/api/v1/openapi.json', undefined, '');
    assert.equal(spec.status, 200);
    assert.match(String(spec.body.openapi), /^3\./);
    assert.ok(spec.body.paths['/api/v1/gateways'], 'lists /api/v1/gateways');
    assert.ok(spec.body.paths['/api/v1/gateways/{name}'], 'lists /api/v1/gateways/{name}');
    assert.ok(spec.body.paths['/api/v1/gateways/{name}/keys'], 'lists /api/v1/gateways/{name}/keys');

    const metrics = await fetch(`${svc.url}/metrics`);
    assert.equal(metrics.status, 200);
    assert.match(metrics.headers.get('content-type') ?? '', /^text\/plain/);
    const text = await metrics.text();
    assert.match(text, /^# HELP ferry_heartbeats_total /m);
    assert.match(text, /^# TYPE ferry_heartbeats_total counter$/m);
  });

  test('/api/v1 without a token or with a wrong token is 401 with an unauthorized problem', async (t) => {
    const svc = await startService(t);

    const none = await svc.api.raw('GET', '/api/v1/gateways', undefined, '');
    assert.equal(none.status, 401);
    assert.equal(none.body.code, 'unauthorized');
    assert.equal(typeof none.body.message, 'string');

    const wrong = await svc.api.raw('GET', '/api/v1/gateways', undefined, 'not-the-admin-token');
    assert.equal(wrong.status, 401);
    assert.equal(wrong.body.code, 'unauthorized');

    const wrongWrite = await svc.api.raw('POST', '/api/v1/gateways', { name: 'x' }, 'not-the-admin-token');
    assert.equal(wrongWrite.status, 401);
    assert.equal((await svc.api.call('GET', '/api/v1/gateways')).gateways.length, 0, 'nothing was created');

    const right = await svc.api.raw('GET', '/api/v1/gateways');
    assert.equal(right.status, 200);
  });

  test('FERRY_ADMIN_TOKEN sets the admin token; no file is written', async (t) => {
    const svc = await startService(t);
    assert.equal((await new Api(svc.url, ADMIN_TOKEN).raw('GET', '/api/v1/gateways')).status, 200);
    assert.throws(() => statSync(join(svc.dataDir, 'admin-token')), { code: 'ENOENT' });
  });

  test('without FERRY_ADMIN_TOKEN the service generates a token into DATA_DIR/admin-token (mode 0600) that works', async (t) => {
    // An empty FERRY_ADMIN_TOKEN counts as unset (src/common/config.ts).
    const svc = await startService(t, { env: { FERRY_ADMIN_TOKEN: '' } });
    const file = join(svc.dataDir, 'admin-token');
    await svc.proc.waitFor(/admin token in (\S+)/);
    assert.equal(statSync(file).mode & 0o777, 0o600);
    const token = readFileSync(file, 'utf8').trim();
    assert.ok(token.length >= 16, 'a real token');
    assert.notEqual(token, ADMIN_TOKEN);

    const api = new Api(svc.url, token);
    assert.equal((await api.raw('GET', '/api/v1/gateways')).status, 200);
    assert.equal((await api.raw('GET', '/api/v1/gateways', undefined, ADMIN_TOKEN)).status, 401);
  });

  test('gateways: create, duplicate, list, show, update maxNodes, delete', async (t) => {
    const svc = await startService(t);

    const created = await svc.api.raw('POST', '/api/v1/gateways', { name: 'gw-a' });
    assert.equal(created.status, 201);
    assert.equal(created.body.name, 'gw-a');
    assert.equal(created.body.status, 'Needs Registration');
    assert.equal(created.body.nodes, 0);
    assert.equal(created.body.maxNodes, null);
    assert.equal(created.body.dispatcher, null);
    assert.equal(typeof created.body.key1, 'string');
    assert.equal(typeof created.body.key2, 'string');
    assert.notEqual(created.body.key1, created.body.key2);

    const dup = await svc.api.raw('POST', '/api/v1/gateways', { name: 'gw-a' });
    assert.equal(dup.status, 409);
    assert.equal(dup.body.code, 'conflict');
    assert.match(dup.body.message, /gw-a/);

    await svc.api.call('POST', '/api/v1/gateways', { name: 'gw-b', maxNodes: 3 });
    const list = await svc.api.call('GET', '/api/v1/gateways');
    assert.deepEqual(
      list.gateways.map((g: { name: string }) => g.name),
      ['gw-a', 'gw-b'],
    );
    for (const g of list.gateways) {
      assert.equal(g.key1, undefined, 'keys are not listed');
      assert.equal(g.key2, undefined, 'keys are not listed');
    }

    const shown = await svc.api.call('GET', '/api/v1/gateways/gw-b');
    assert.equal(shown.name, 'gw-b');
    assert.equal(shown.status, 'Needs Registration');
    assert.equal(shown.maxNodes, 3);
    assert.deepEqual(shown.nodeList, []);
    assert.equal(shown.key1, undefined, 'show does not reveal keys');

    const patched = await svc.api.raw('PATCH', '/api/v1/gateways/gw-a', { maxNodes: 2 });
    assert.equal(patched.status, 200);
    assert.equal(patched.body.maxNodes, 2);
    assert.equal((await svc.api.call('GET', '/api/v1/gateways/gw-a')).maxNodes, 2);
    const uncapped = await svc.api.call('PATCH', '/api/v1/gateways/gw-a', { maxNodes: null });
    assert.equal(uncapped.maxNodes, null);

    const missing = await svc.api.raw('PATCH', '/api/v1/gateways/nope', { maxNodes: 2 });
    assert.equal(missing.status, 404);
    assert.equal(missing.body.code, 'not_found');

    const del = await svc.api.raw('DELETE', '/api/v1/gateways/gw-a');
    assert.equal(del.status, 204);
    const gone = await svc.api.raw('GET', '/api/v1/gateways/gw-a');
    assert.equal(gone.status, 404);
    assert.equal(gone.body.code, 'not_found');
    assert.match(gone.body.message, /gw-a/);
    assert.equal((await svc.api.raw('DELETE', '/api/v1/gateways/gw-a')).status, 404);
    assert.deepEqual(
      (await svc.api.call('GET', '/api/v1/gateways')).gateways.map((g: { name: string }) => g.name),
      ['gw-b'],
    );
  });

  test('gateways: a bad body is 400 and the message names the field', async (t) => {
    const svc = await startService(t);

    const spaces = await svc.api.raw('POST', '/api/v1/gateways', { name: 'has spaces' });
    assert.equal(spaces.status, 400);
    assert.equal(spaces.body.code, 'bad_request');
    assert.match(spaces.body.message, /\bname\b/);

    const missing = await svc.api.raw('POST', '/api/v1/gateways', {});
    assert.equal(missing.status, 400);
    assert.equal(missing.body.code, 'bad_request');
    assert.match(missing.body.message, /\bname\b/);

    const badCap = await svc.api.raw('POST', '/api/v1/gateways', { name: 'ok', maxNodes: 0 });
    assert.equal(badCap.status, 400);
    assert.match(badCap.body.message, /maxNodes/);

    const unknownField = await svc.api.raw('POST', '/api/v1/gateways', { name: 'ok', colour: 'red' });
    assert.equal(unknownField.status, 400);
    assert.match(unknownField.body.message, /\bcolour\b/);

    const badPatch = await svc.api.raw('PATCH', '/api/v1/gateways/ok', { maxNodes: 'many' });
    assert.equal(badPatch.status, 400);
    assert.match(badPatch.body.message, /maxNodes/);

    assert.equal((await svc.api.call('GET', '/api/v1/gateways')).gateways.length, 0, 'nothing was created');
  });

  test('keys: regenerating key1 changes only key1; the old key1 is refused for registration, the new one works', async (t) => {
    const svc = await startService(t);
    const created = await svc.api.call('POST', '/api/v1/gateways', { name: 'gw' });

    const keys = await svc.api.call('GET', '/api/v1/gateways/gw/keys');
    assert.equal(keys.key1, created.key1);
    assert.equal(keys.key2, created.key2);

    const regen = await svc.api.call('POST', '/api/v1/gateways/gw/keys/key1/regenerate');
    assert.notEqual(regen.key1, created.key1);
    assert.equal(regen.key2, created.key2);
    assert.deepEqual(await svc.api.call('GET', '/api/v1/gateways/gw/keys'), regen);

    const badWhich = await svc.api.raw('POST', '/api/v1/gateways/gw/keys/key3/regenerate');
    assert.equal(badWhich.status, 400);

    // A real node with the old key: refused, exits 1 with the service's reason.
    const old = await startNode(t, svc, { name: 'old-key', key: created.key1, wait: false });
    const exit = await old.proc.exited;
    assert.equal(exit.code, 1, old.proc.output);
    assert.match(old.proc.output, /ferry: the authentication key is not valid for any gateway/);

    // The registration endpoint itself says registration_refused.
    const direct = await svc.api.raw(
      'POST',
      '/api/v1/agent/register',
      registrationBody(created.key1, 'direct'),
      '',
    );
    assert.equal(direct.status, 403);
    assert.equal(direct.body.code, 'registration_refused');

    // The new key1 and the unchanged key2 both register.
    await startNode(t, svc, { name: 'new-key1', key: regen.key1 });
    await startNode(t, svc, { name: 'same-key2', key: regen.key2 });
    await eventually('both nodes listed', async () => {
      const names = await nodeNames(svc, 'gw');
      return names.includes('new-key1') && names.includes('same-key2') && !names.includes('old-key');
    });
  });

  test('CLI: gateway create, list --json, keys --regenerate key2, and a failing command', async (t) => {
    const svc = await startService(t);
    const flags = ['--service', svc.url, '--token', svc.token];
    // The CLI must not fall back to a token from the environment.
    const env = { FERRY_TOKEN: '', FERRY_ADMIN_TOKEN: '', FERRY_SERVICE: '' };

    const create = await cli(['gateway', 'create', 'cli-gw', ...flags], env);
    assert.equal(create.code, 0, create.stderr);
    assert.match(create.stdout, /gateway:\s+cli-gw/);
    const key1 = create.stdout.match(/key1:\s+(\S+)/)?.[1];
    const key2 = create.stdout.match(/key2:\s+(\S+)/)?.[1];
    assert.ok(key1 && key2, create.stdout);
    assert.deepEqual(await svc.api.call('GET', '/api/v1/gateways/cli-gw/keys'), {
      gateway: 'cli-gw',
      key1,
      key2,
    });

    // Global flags also work before the command.
    const createJson = await cli(
      [...flags, '--json', 'gateway', 'create', 'cli-gw2', '--max-nodes', '4'],
      env,
    );
    assert.equal(createJson.code, 0, createJson.stderr);
    const created2 = JSON.parse(createJson.stdout);
    assert.equal(created2.name, 'cli-gw2');
    assert.equal(created2.maxNodes, 4);
    assert.equal(created2.status, 'Needs Registration');

    const list = await cli(['gateway', 'list', '--json', ...flags], env);
    assert.equal(list.code, 0, list.stderr);
    const listed = JSON.parse(list.stdout);
    assert.deepEqual(
      listed.gateways.map((g: { name: string; status: string }) => [g.name, g.status]),
      [
        ['cli-gw', 'Needs Registration'],
        ['cli-gw2', 'Needs Registration'],
      ],
    );

    const regen = await cli(['gateway', 'keys', 'cli-gw', '--regenerate', 'key2', ...flags], env);
    assert.equal(regen.code, 0, regen.stderr);
    const newKey2 = regen.stdout.match(/key2:\s+(\S+)/)?.[1];
    assert.match(regen.stdout, new RegExp(`key1:\\s+${key1}`));
    assert.ok(newKey2 && newKey2 !== key2, regen.stdout);
    const after = await svc.api.call('GET', '/api/v1/gateways/cli-gw/keys');
    assert.equal(after.key1, key1);
    assert.equal(after.key2, newKey2);

    const show = await cli(['gateway', 'show', 'nope', ...flags], env);
    assert.notEqual(show.code, 0);
    assert.equal(show.stdout, '');
    const lines = show.stderr.trimEnd().split('\n');
    assert.match(lines[0] ?? '', /^ferry: gateway "nope" does not exist$/);
    // The reason is one line; an optional hint line may follow, never a stack trace.
    for (const l of lines.slice(1)) assert.match(l, /^ {2}hint: /);

    const noToken = await cli(['gateway', 'list', '--service', svc.url], env, svc.dataDir);
    assert.notEqual(noToken.code, 0);
    assert.match(noToken.stderr.split('\n')[0] ?? '', /^ferry: missing bearer token$/);

    const wrongToken = await cli(['gateway', 'list', '--service', svc.url, '--token', 'nope'], env);
    assert.notEqual(wrongToken.code, 0);
    assert.match(wrongToken.stderr.split('\n')[0] ?? '', /^ferry: invalid token$/);
  });
});

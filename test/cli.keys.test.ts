/** `ferry gateway keys NAME --show key1|key2` prints the bare key, so a script needs no JSON tool. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { cli, startService } from './helpers/cluster.ts';

test('gateway keys --show prints the bare key', async (t) => {
  const svc = await startService(t);
  const flags = ['--service', svc.url, '--token', svc.token];
  await svc.api.call('POST', '/api/v1/gateways', { name: 'gw' });
  const keys = await svc.api.call('GET', '/api/v1/gateways/gw/keys');

  const one = await cli(['gateway', 'keys', 'gw', '--show', 'key1', ...flags]);
  assert.equal(one.code, 0, one.stderr);
  assert.equal(one.stdout, `${keys.key1}\n`);
  // --json does not wrap it: --show is for `KEY=$(...)`.
  const two = await cli(['--json', 'gateway', 'keys', 'gw', '--show', 'key2', ...flags]);
  assert.equal(two.code, 0, two.stderr);
  assert.equal(two.stdout, `${keys.key2}\n`);

  // With --regenerate: the new key.
  const regen = await cli(['gateway', 'keys', 'gw', '--regenerate', 'key2', '--show', 'key2', ...flags]);
  assert.equal(regen.code, 0, regen.stderr);
  const after = await svc.api.call('GET', '/api/v1/gateways/gw/keys');
  assert.notEqual(after.key2, keys.key2);
  assert.equal(regen.stdout, `${after.key2}\n`);

  const bad = await cli(['gateway', 'keys', 'gw', '--show', 'key3', ...flags]);
  assert.equal(bad.code, 1);
  assert.equal(bad.stdout, '');
  assert.match(bad.stderr, /^ferry: --show takes key1 or key2 \(got "key3"\)\n$/);
});

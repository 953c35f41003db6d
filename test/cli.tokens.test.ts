/**
 * `ferry token create|list|revoke` and `ferry audit` through the real CLI against a real service: a
 * token printed once (and never listed), a reader refused a change with the role it needs, a revoked
 * token refused at its next command, the audit log read with its filters, and the service refusing
 * an audit retention that is not a number of days.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { ADMIN_TOKEN, cli, startService, tempDir } from './helpers/cluster.ts';

test('ferry token and ferry audit', async (t) => {
  const svc = await startService(t);
  const env = { FERRY_SERVICE: svc.url, FERRY_TOKEN: ADMIN_TOKEN };
  const ferry = (args: string[], token?: string) =>
    cli(args, token === undefined ? env : { ...env, FERRY_TOKEN: token });

  const made = await ferry(['token', 'create', '--name', 'ci', '--role', 'reader']);
  assert.equal(made.code, 0, made.stderr);
  const reader = /^token:\s+(ferry_tok_\S+)$/m.exec(made.stdout)?.[1];
  assert.ok(reader, made.stdout);
  assert.match(made.stdout, /^role:\s+reader$/m);
  assert.match(made.stdout, /not shown again/);

  const json = await ferry(['token', 'create', '--name', 'deploy', '--role', 'operator', '--json']);
  assert.equal(json.code, 0, json.stderr);
  const operator = JSON.parse(json.stdout);
  assert.equal(operator.role, 'operator');
  assert.equal(operator.createdBy, 'bootstrap');
  assert.match(operator.token, /^ferry_tok_/);

  const badRole = await ferry(['token', 'create', '--name', 'x', '--role', 'root']);
  assert.equal(badRole.code, 1);
  assert.equal(badRole.stderr, 'ferry: --role takes reader, operator, admin (got "root")\n');
  const noRole = await ferry(['token', 'create', '--name', 'x']);
  assert.equal(noRole.code, 2);
  assert.match(noRole.stderr, /required option '--role <role>' not specified/);
  const dup = await ferry(['token', 'create', '--name', 'ci', '--role', 'admin']);
  assert.equal(dup.code, 1);
  assert.match(dup.stderr, /a token named "ci" already exists/);

  const list = await ferry(['token', 'list']);
  assert.equal(list.code, 0, list.stderr);
  assert.match(list.stdout, /^NAME\s+ROLE\s+CREATED\s+LAST USED\s+STATE$/m);
  assert.match(list.stdout, /^ci\s+reader\s+.* by bootstrap\s+never\s+active$/m);
  assert.match(list.stdout, /^deploy\s+operator\s/m);
  const listJson = await ferry(['token', 'list', '--json']);
  for (const out of [list.stdout, listJson.stdout]) {
    assert.equal(out.includes(reader), false);
    assert.equal(out.includes(operator.token), false);
  }

  // A reader reads, and is told which role a change needs.
  assert.equal((await ferry(['gateway', 'list'], reader)).code, 0);
  const refused = await ferry(['gateway', 'create', 'gw'], reader);
  assert.equal(refused.code, 1);
  assert.equal(
    refused.stderr,
    'ferry: POST /api/v1/gateways needs the admin role; the token "ci" has the reader role\n' +
      '  hint: ask an admin for a token with the admin role (ferry token create --name NAME --role admin)\n',
  );
  // An operator cannot make tokens.
  const escalate = await ferry(['token', 'create', '--name', 'mine', '--role', 'admin'], operator.token);
  assert.equal(escalate.code, 1);
  assert.match(escalate.stderr, /needs the admin role; the token "deploy" has the operator role/);
  assert.equal((await ferry(['audit'], operator.token)).code, 1);

  const revoked = await ferry(['token', 'revoke', 'ci']);
  assert.equal(revoked.code, 0, revoked.stderr);
  assert.equal(revoked.stdout, 'revoked token ci\n');
  const after = await ferry(['gateway', 'list'], reader);
  assert.equal(after.code, 1);
  assert.match(after.stderr, /^ferry: this token was revoked\n/);
  assert.match((await ferry(['token', 'list'])).stdout, /^ci\s+reader\s+.*revoked .* by bootstrap$/m);
  const again = await ferry(['token', 'revoke', 'ci']);
  assert.equal(again.code, 1);
  assert.match(again.stderr, /already revoked/);

  // The audit log, oldest first on screen.
  const audit = await ferry(['audit']);
  assert.equal(audit.code, 0, audit.stderr);
  const lines = audit.stdout.trimEnd().split('\n');
  assert.match(lines[0]!, /^AT\s+ACTOR\s+ROLE\s+STATUS\s+REQUEST\s+DETAILS$/);
  const rows = lines.slice(1).map((l) =>
    l
      .split(/\s{2,}/)
      .slice(1, 5)
      .join(' | '),
  );
  // The CLI refused `--role root` and a missing --role itself: neither reached the service.
  assert.deepEqual(rows, [
    'bootstrap | admin | 201 | POST /api/v1/tokens',
    'bootstrap | admin | 201 | POST /api/v1/tokens',
    'bootstrap | admin | 409 | POST /api/v1/tokens',
    'ci | reader | 403 | POST /api/v1/gateways',
    'deploy | operator | 403 | POST /api/v1/tokens',
    'bootstrap | admin | 204 | DELETE /api/v1/tokens/ci',
    'bootstrap | admin | 409 | DELETE /api/v1/tokens/ci',
  ]);
  assert.match(lines[1]!, /\{"name":"ci","role":"reader"\}$/);

  const mine = JSON.parse((await ferry(['audit', '--actor', 'deploy', '--json'])).stdout);
  assert.deepEqual(
    mine.entries.map((e: { actor: string; status: number; details: object }) => [
      e.actor,
      e.status,
      e.details,
    ]),
    [['deploy', 403, {}]],
  );
  const lastTwo = JSON.parse((await ferry(['audit', '--since', '1h', '--limit', '2', '--json'])).stdout);
  assert.deepEqual(
    lastTwo.entries.map((e: { method: string; status: number }) => `${e.method} ${e.status}`),
    ['DELETE 409', 'DELETE 204'],
  );
  const bad = await ferry(['audit', '--since', 'yesterday']);
  assert.equal(bad.code, 1);
  assert.equal(bad.stderr, 'ferry: --since takes a duration such as 90s, 30m, 24h or 7d (got "yesterday")\n');

  const retention = await cli([
    'service',
    '--port',
    '0',
    '--data-dir',
    tempDir(t),
    '--audit-retention-days',
    '0',
  ]);
  assert.equal(retention.code, 1);
  assert.match(retention.stderr, /auditRetentionDays must be a number of days above 0 \(got 0\)/);
});

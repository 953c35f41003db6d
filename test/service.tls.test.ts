/**
 * The service over HTTPS (`--tls-cert/--tls-key`): nodes that trust its CA (`--service-ca` or
 * FERRY_SERVICE_CA) register, heartbeat and run a pipeline; the CLI trusts FERRY_SERVICE_CA; without
 * the CA, a node and the CLI fail at once with an error that names the certificate problem and the
 * flag to use; and nothing is served in clear on the service's port.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { Proc, cli, eventually, startNode, startService, tempDir, track } from './helpers/cluster.ts';
import { OPENSSL, makeCertificates } from './helpers/certificates.ts';
import { fsLinkedServices, makeFiles, runPipeline, treeDigest, waitRun } from './helpers/scenario.ts';

const skip = !OPENSSL && 'the openssl CLI is not installed';

test(
  'a service serving HTTPS: nodes and the CLI that trust its CA work, others fail clearly',
  { skip },
  async (t) => {
    const tls = makeCertificates(tempDir(t, 'ferry-tls-'));
    const svc = await startService(t, { tls });
    assert.match(svc.url, /^https:\/\/127\.0\.0\.1:\d+$/);
    const created = await svc.api.call('POST', '/api/v1/gateways', { name: 'gw' });
    const root = tempDir(t, 'ferry-data-');

    // One node trusts the CA by flag, the other by environment.
    const node1 = await startNode(t, svc, {
      name: 'node-1',
      key: created.key1,
      allowPaths: [root],
      extraArgs: ['--service-ca', tls.ca, '--limit', '2'],
    });
    await startNode(t, svc, {
      name: 'node-2',
      key: created.key1,
      allowPaths: [root],
      extraArgs: ['--limit', '2'],
      env: { FERRY_SERVICE_CA: tls.ca },
    });
    await eventually('both nodes Online with a dispatcher', async () => {
      const res = await svc.api.call('GET', '/api/v1/gateways/gw/nodes');
      return (
        res.nodes.length === 2 &&
        res.nodes.every((n: { status: string }) => n.status === 'Online') &&
        res.gateway.dispatcher !== null
      );
    });

    const g = { svc, gateway: 'gw', key: created.key1, nodes: [], root };
    await fsLinkedServices(g, { in: 'src', out: 'dst' }, { in: 'in', out: 'out' });
    makeFiles(join(root, 'in'), '', 12, (i) => 5_000 + i * 100);
    const runId = await runPipeline(g, {
      name: 'over-https',
      activities: [
        { name: 'files', source: { linkedService: 'src', filesPerTask: 2 }, sink: { linkedService: 'dst' } },
      ],
    });
    const run = await waitRun(g, runId);
    assert.equal(run.status, 'succeeded', JSON.stringify(run.error));
    assert.deepEqual(treeDigest(join(root, 'out')), treeDigest(join(root, 'in')));

    // The CLI trusts FERRY_SERVICE_CA (and --service-ca).
    const env = { FERRY_TOKEN: svc.token, FERRY_SERVICE: svc.url };
    const listed = await cli(['node', 'list', 'gw', '--json'], { ...env, FERRY_SERVICE_CA: tls.ca });
    assert.equal(listed.code, 0, listed.stderr);
    assert.deepEqual(
      JSON.parse(listed.stdout)
        .nodes.map((n: { name: string }) => n.name)
        .sort(),
      ['node-1', 'node-2'],
    );
    const byFlag = await cli(['gateway', 'list', '--service-ca', tls.ca], env);
    assert.equal(byFlag.code, 0, byFlag.stderr);
    assert.match(byFlag.stdout, /^gw\s/m);

    // Without the CA: one line naming the certificate problem, and a hint naming the flag.
    const untrusted = await cli(['gateway', 'list'], env);
    assert.equal(untrusted.code, 1);
    assert.match(
      untrusted.stderr,
      /ferry: service https:\/\/127\.0\.0\.1:\d+: its TLS certificate is not trusted \(/,
    );
    assert.match(untrusted.stderr, /hint: pass --service-ca FILE \(or set FERRY_SERVICE_CA\)/);
    // A CA file that is not there is named too.
    const missing = await cli(['gateway', 'list'], { ...env, FERRY_SERVICE_CA: join(root, 'nope.pem') });
    assert.equal(missing.code, 1);
    assert.match(missing.stderr, /cannot read FERRY_SERVICE_CA .*nope\.pem: no such file/);
    // http:// to the HTTPS port: refused, with a hint to use https://.
    const plain = await cli(['gateway', 'list'], {
      ...env,
      FERRY_SERVICE: svc.url.replace('https:', 'http:'),
    });
    assert.equal(plain.code, 1);
    assert.match(plain.stderr, /use https:\/\/ in --service/);
    // Nothing is served in clear on the service's port.
    await assert.rejects(fetch(`${svc.url.replace('https:', 'http:')}/healthz`));

    // gateway create's hint says how to register a node with the CA.
    const made = await cli(['gateway', 'create', 'gw2', '--service-ca', tls.ca], env);
    assert.equal(made.code, 0, made.stderr);
    assert.match(made.stdout, /ferry node --service https:\/\/\S+ --service-ca CA\.pem --key /);

    // `node leave` on the node's machine reaches the service with the CA too.
    node1.proc.kill('SIGTERM');
    await node1.proc.exited;
    const left = await cli(['node', 'leave', '--data-dir', node1.dataDir, '--service-ca', tls.ca], env);
    assert.equal(left.code, 0, left.stderr);
    assert.match(left.stdout, /node node-1 left gateway gw/);

    // A node without the CA does not register: it exits with the same clear reason.
    const lost = await startNode(t, svc, { name: 'node-3', key: created.key1, wait: false });
    const exit = await lost.proc.exited;
    assert.equal(exit.code, 1, lost.proc.output);
    assert.match(lost.proc.output, /its TLS certificate is not trusted/);
    assert.match(lost.proc.output, /--service-ca/);
    const after = await svc.api.call('GET', '/api/v1/gateways/gw/nodes');
    assert.deepEqual(
      after.nodes.map((n: { name: string }) => n.name),
      ['node-2'],
      'node-1 left; the node without the CA never registered',
    );
  },
);

test('ferry up over HTTPS: its own node trusts the CA, and the CLI reaches it', { skip }, async (t) => {
  const tls = makeCertificates(tempDir(t, 'ferry-tls-'));
  const dir = tempDir(t, 'ferry-up-');
  const up = track(
    t,
    new Proc(
      'up',
      [
        'up',
        '--port',
        '0',
        '--node-port',
        '0',
        '--tls-cert',
        tls.cert,
        '--tls-key',
        tls.key,
        '--service-ca',
        tls.ca,
      ],
      {},
      dir,
    ),
  );
  const m = await up.waitFor(/API:\s+(https:\/\/127\.0\.0\.1:\d+)/);
  const url = m[1] ?? '';
  await up.waitFor(/Ferry is up\./);
  const env = { FERRY_SERVICE: url, FERRY_SERVICE_CA: tls.ca };
  const listed = await eventually('the local node Online', async () => {
    const r = await cli(['node', 'list', 'default', '--json'], env, dir);
    if (r.code !== 0) throw new Error(r.stderr);
    const nodes = JSON.parse(r.stdout).nodes;
    return nodes.length === 1 && nodes[0].status === 'Online' ? nodes : undefined;
  });
  assert.equal(listed.length, 1);
  up.kill('SIGTERM');
  assert.equal((await up.exited).code, 0, up.output.slice(-2000));
});

test('ferry service refuses TLS files it cannot use, naming them', { skip }, async (t) => {
  const a = makeCertificates(tempDir(t, 'ferry-tls-a-'));
  const b = makeCertificates(tempDir(t, 'ferry-tls-b-'));
  const dir = tempDir(t, 'ferry-svc-');
  const run = (...args: string[]): ReturnType<typeof cli> =>
    cli(['service', '--port', '0', '--data-dir', dir, ...args], {}, dir);

  const alone = await run('--tls-cert', a.cert);
  assert.equal(alone.code, 1);
  assert.match(alone.stderr, /HTTPS needs --tls-cert and --tls-key together/);

  const missing = await run('--tls-cert', a.cert, '--tls-key', join(dir, 'missing.key'));
  assert.equal(missing.code, 1);
  assert.match(missing.stderr, /cannot read --tls-key .*missing\.key: no such file/);

  const mismatched = await run('--tls-cert', a.cert, '--tls-key', b.key);
  assert.equal(mismatched.code, 1);
  assert.match(mismatched.stderr, /--tls-cert .* and --tls-key .* cannot be used: .*key values mismatch/);
});

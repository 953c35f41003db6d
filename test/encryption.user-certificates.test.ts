/**
 * Node-to-node TLS with certificates the user supplies (--tls-cert, --tls-key, --tls-ca) once the
 * gateway's mode is tls: every subjectAltName counts (each node's certificate matches 127.0.0.1 by
 * its middle SAN, neither the first nor the last), copies are dispatched across verified TLS; a node
 * whose certificate does not name its address is not reachable by its peers and is not Online, with
 * the reason; a node whose certificate files are missing cannot switch and is Inactive, saying why.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { eventually, startNode, startService, tempDir } from './helpers/cluster.ts';
import { OPENSSL, makeCertificates } from './helpers/certificates.ts';
import {
  fsLinkedServices,
  makeFiles,
  nodesView,
  runPipeline,
  treeDigest,
  waitRun,
} from './helpers/scenario.ts';

const MIDDLE_SAN = 'DNS:first.example,IP:127.0.0.1,DNS:last.example';

test(
  'user certificates: every SAN honoured, mutual TLS copies; a wrong address or missing files keep a node out, with the reason',
  { skip: !OPENSSL && 'the openssl CLI is not installed' },
  async (t) => {
    const dir = tempDir(t, 'ferry-user-certs-');
    const certs = [1, 2, 3].map((i) => makeCertificates(dir, { name: `node-${i}`, sans: MIDDLE_SAN }));
    const svc = await startService(t);
    await svc.api.call('POST', '/api/v1/gateways', { name: 'gw' });
    await svc.api.call('PATCH', '/api/v1/gateways/gw', { encryption: 'tls' });
    const keys = await svc.api.call('GET', '/api/v1/gateways/gw/keys');
    const root = tempDir(t, 'ferry-data-');
    const tlsArgs = (c: { cert: string; key: string; ca: string }) => [
      '--tls-cert',
      c.cert,
      '--tls-key',
      c.key,
      '--tls-ca',
      c.ca,
      '--limit',
      '2',
    ];
    for (const [i, c] of certs.entries())
      await startNode(t, svc, {
        name: `node-${i + 1}`,
        key: keys.key1,
        allowPaths: [root],
        extraArgs: tlsArgs(c),
      });
    const g = { svc, gateway: 'gw', key: keys.key1, nodes: [], root };
    const view = await eventually('three nodes Online in TLS only', async () => {
      const v = await nodesView(g);
      return v.nodes.length === 3 && v.nodes.every((n: any) => n.status === 'Online' && n.transport === 'tls')
        ? v
        : undefined;
    });
    for (const n of view.nodes) assert.equal(n.certificate.source, 'user');

    await fsLinkedServices(g, { in: 'src', out: 'dst' }, { in: 'in', out: 'out' });
    makeFiles(join(root, 'in'), '', 24, (i) => 10_000 + i * 1000);
    await eventually('the dispatcher to hear of every node', async () => {
      const v = await nodesView(g);
      return v.nodes.every((n: any) => n.status === 'Online');
    });
    const runId = await runPipeline(g, {
      name: 'user-tls',
      activities: [
        { name: 'files', source: { linkedService: 'src', filesPerTask: 2 }, sink: { linkedService: 'dst' } },
      ],
    });
    const run = await waitRun(g, runId);
    assert.equal(run.status, 'succeeded', JSON.stringify(run.error));
    const ran = new Set(run.tasks.filter((tk: any) => tk.kind === 'copy').map((tk: any) => tk.node));
    assert.ok(ran.size >= 2, `tasks ran on ${[...ran].join(', ')}: dispatched across TLS`);
    assert.deepEqual(treeDigest(join(root, 'out')), treeDigest(join(root, 'in')));

    // A certificate of the same CA that does not name the node's address: its peers refuse it.
    const wrong = makeCertificates(dir, { name: 'node-wrong', sans: 'DNS:elsewhere.example' });
    await startNode(t, svc, {
      name: 'node-wrong',
      key: keys.key1,
      allowPaths: [root],
      extraArgs: tlsArgs(wrong),
    });
    const refused = await eventually('node-wrong reported unreachable by certificate', async () => {
      const v = await nodesView(g);
      const n = v.nodes.find((x: any) => x.name === 'node-wrong');
      return n && n.status !== 'Online' && /not valid for the address called/.test(n.statusHint)
        ? n
        : undefined;
    });
    assert.match(refused.statusHint, /127\.0\.0\.1/);

    // Certificate files that are not there: the node cannot switch, and says so.
    const missing = join(dir, 'missing.pem');
    await startNode(t, svc, {
      name: 'node-missing',
      key: keys.key1,
      allowPaths: [root],
      extraArgs: ['--tls-cert', missing, '--tls-key', wrong.key, '--tls-ca', wrong.ca],
    });
    const stuck = await eventually('node-missing Inactive with the reason', async () => {
      const v = await nodesView(g);
      const n = v.nodes.find((x: any) => x.name === 'node-missing');
      return n?.status === 'Inactive' ? n : undefined;
    });
    assert.equal(stuck.statusReason, 'config_mismatch');
    assert.match(
      stuck.statusHint,
      /^node-missing cannot switch to TLS: cannot read --tls-cert .*missing\.pem: no such file/,
    );
    const final = await nodesView(g);
    for (const name of ['node-1', 'node-2', 'node-3'])
      assert.equal(final.nodes.find((n: any) => n.name === name).status, 'Online', `${name} stays Online`);
  },
);

/**
 * A gateway whose nodes all encrypt node-to-node traffic: every node Online, tasks dispatched to
 * every node over TLS verified against the CA (certificate for 127.0.0.1 by SAN), the copy identical;
 * and the TLS port refuses a client that does not trust the CA.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { get } from 'node:https';
import { join } from 'node:path';
import { tempDir } from './helpers/cluster.ts';
import { OPENSSL, makeCertificates } from './helpers/certificates.ts';
import {
  fsLinkedServices,
  gatewayWithNodes,
  makeFiles,
  nodesView,
  runPipeline,
  treeDigest,
  waitRun,
} from './helpers/scenario.ts';

test(
  'a gateway of TLS nodes dispatches over verified TLS and copies exactly',
  { skip: !OPENSSL && 'the openssl CLI is not installed' },
  async (t) => {
    const tls = makeCertificates(tempDir(t, 'ferry-tls-'));
    const g = await gatewayWithNodes(t, 3, {
      nodeArgs: ['--limit', '2', '--tls-cert', tls.cert, '--tls-key', tls.key, '--tls-ca', tls.ca],
    });
    const view = await nodesView(g);
    for (const n of view.nodes) {
      assert.equal(n.tls, true);
      assert.equal(n.status, 'Online', `${n.name}: ${n.statusHint}`);
    }

    await fsLinkedServices(g, { in: 'src', out: 'dst' }, { in: 'in', out: 'out' });
    makeFiles(join(g.root, 'in'), '', 24, (i) => 10_000 + i * 1000);
    const runId = await runPipeline(g, {
      name: 'tls',
      activities: [
        { name: 'files', source: { linkedService: 'src', filesPerTask: 2 }, sink: { linkedService: 'dst' } },
      ],
    });
    const run = await waitRun(g, runId);
    assert.equal(run.status, 'succeeded', JSON.stringify(run.error));
    const nodes = new Set(run.tasks.filter((tk: any) => tk.kind === 'copy').map((tk: any) => tk.node));
    assert.ok(nodes.size >= 2, `tasks ran on ${[...nodes].join(', ')}: dispatched across TLS`);
    assert.deepEqual(treeDigest(join(g.root, 'out')), treeDigest(join(g.root, 'in')));

    // A client without the CA is refused by the TLS handshake, before any request is read.
    const port = view.nodes[0].peerAddress.split(':')[1];
    const err = await new Promise<Error>((resolve) => {
      get({ host: '127.0.0.1', port: Number(port), path: '/healthz' }, () =>
        resolve(new Error('connected')),
      ).on('error', resolve);
    });
    assert.match(err.message, /self[- ]signed|unable to verify|certificate/i);
  },
);

/**
 * Node-to-node encryption changed live on a gateway of three real node processes, while a copy runs:
 * none -> tls (certificates from the gateway's own CA, rotated within the test: the service issues
 * them for 8 s) -> none. No node is deleted, the copy succeeds with every file identical, and every
 * node ends Online, reporting the mode. While the gateway is tls, a node's port refuses plain HTTP
 * (saying why) and a TLS client without a certificate of the gateway's CA.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { request } from 'node:http';
import { connect } from 'node:tls';
import { readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { cli, eventually } from './helpers/cluster.ts';
import {
  fsLinkedServices,
  gatewayWithNodes,
  makeFiles,
  nodesView,
  runPipeline,
  treeDigest,
  waitRun,
  type Gateway,
} from './helpers/scenario.ts';

const VALIDITY_MS = 8_000;

async function allNodes(g: Gateway, transport: 'plain' | 'tls', why: string): Promise<any[]> {
  return eventually(
    why,
    async () => {
      const v = await nodesView(g);
      const ok =
        v.nodes.length === 3 && v.nodes.every((n: any) => n.transport === transport && n.status === 'Online');
      return ok ? v.nodes : undefined;
    },
    20_000,
  );
}

/** The certificate the node at `port` serves, fetched as a gateway member would (its CA, a client certificate). */
function servedCertificate(
  port: number,
  tlsDir: string,
): Promise<{ fingerprint256: string; valid_to: string; subjectaltname?: string }> {
  return new Promise((resolve, reject) => {
    const s = connect(
      {
        host: '127.0.0.1',
        port,
        ca: readFileSync(join(tlsDir, 'ca.pem')),
        cert: readFileSync(join(tlsDir, 'node-cert.pem')),
        key: readFileSync(join(tlsDir, 'node-key.pem')),
      },
      () => {
        const c = s.getPeerCertificate();
        s.end();
        resolve(c);
      },
    );
    s.on('error', reject);
  });
}

function plainGet(port: number): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    request({ host: '127.0.0.1', port, path: '/healthz' }, (res) => {
      let body = '';
      res.on('data', (c: Buffer) => (body += c.toString()));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body }));
    })
      .on('error', reject)
      .end();
  });
}

test('none -> tls -> none on a live gateway of three nodes, with a copy running and certificates rotating', async (t) => {
  const g = await gatewayWithNodes(t, 3, {
    service: { config: { nodeCertValidityMs: VALIDITY_MS } },
    nodeArgs: ['--limit', '2'],
  });
  const ports = (await nodesView(g)).nodes.map((n: any) => Number(n.peerAddress.split(':')[1]));
  const tlsDirs = g.nodes.map((n) => join(n.dataDir, 'tls')) as [string, string, string];

  // Certificates are issued in mode none too, so a switch finds every node ready; the key stays 0600.
  for (const dir of tlsDirs) {
    await eventually('a certificate from the gateway CA', async () => {
      try {
        return statSync(join(dir, 'node-cert.pem')).size > 0;
      } catch {
        return false;
      }
    });
    assert.equal(statSync(join(dir, 'node-key.pem')).mode & 0o777, 0o600);
  }
  let v = await nodesView(g);
  assert.equal(v.gateway.encryption, 'none');
  for (const n of v.nodes) assert.equal(n.transport, 'plain');

  await fsLinkedServices(g, { in: 'src', out: 'dst' }, { in: 'in', out: 'out' });
  makeFiles(join(g.root, 'in'), '', 60, (i) => 200_000 + i * 1000);
  const runId = await runPipeline(g, {
    name: 'switch',
    activities: [
      {
        name: 'files',
        source: { linkedService: 'src', filesPerTask: 1 },
        sink: { linkedService: 'dst' },
        maxBytesPerSecond: 150_000,
      },
    ],
  });
  await eventually('the copy under way', async () => {
    const r = await g.svc.api.call('GET', `/api/v1/runs/${runId}`);
    return r.tasks.filter((tk: any) => tk.kind === 'copy' && tk.status === 'succeeded').length >= 3;
  });

  // none -> tls, live, from the CLI (a mode it does not know is refused before any request).
  const flags = ['--service', g.svc.url, '--token', g.svc.token];
  const bad = await cli(['gateway', 'update', g.gateway, '--encryption', 'ssl', ...flags]);
  assert.notEqual(bad.code, 0);
  assert.match(bad.stderr, /--encryption takes none or tls/);
  const updated = await cli(['gateway', 'update', g.gateway, '--encryption', 'tls', ...flags]);
  assert.equal(updated.code, 0, updated.stderr);
  assert.match(updated.stdout, /encryption:\s+tls/);
  const tlsNodes = await allNodes(g, 'tls', 'every node Online in TLS only');
  const tlsFrom = Date.now();
  const shown = await cli(['gateway', 'show', g.gateway, ...flags]);
  assert.match(shown.stdout, /encryption:\s+tls \(node-to-node\)/);
  const audit = await g.svc.api.call('GET', '/api/v1/audit');
  assert.ok(
    audit.entries.some((e: any) => e.method === 'PATCH' && e.details.encryption === 'tls'),
    'the change is in the audit log',
  );
  const dispatcher = tlsNodes.find((n: any) => n.role === 'dispatcher').name;
  for (const n of tlsNodes) {
    assert.equal(n.tls, true);
    assert.equal(n.certificate.source, 'gateway');
  }
  const during = await g.svc.api.call('GET', `/api/v1/runs/${runId}`);
  assert.equal(during.status, 'running', 'the copy is still running after the switch');

  // Plain HTTP is refused, saying why; so is TLS without a certificate from the gateway's CA.
  const plain = await plainGet(ports[0]);
  assert.equal(plain.status, 403);
  assert.match(JSON.parse(plain.body).message, /over TLS only \(the gateway's encryption mode is tls\)/);
  const anonymous = await new Promise<Error | undefined>((resolve) => {
    const s = connect({ host: '127.0.0.1', port: ports[0], ca: readFileSync(join(tlsDirs[1], 'ca.pem')) });
    s.on('secureConnect', () => s.write('GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n'));
    s.on('data', () => resolve(undefined));
    s.on('error', resolve);
    s.on('close', () => resolve(new Error('closed without an answer')));
  });
  assert.ok(anonymous, 'a client without a certificate gets no answer');

  // The certificate names the advertise address and rotates two thirds into its validity, live.
  const first = await servedCertificate(ports[1], tlsDirs[0]);
  assert.match(first.subjectaltname ?? '', /IP Address:127\.0\.0\.1/);
  const rotated = await eventually(
    'a rotated certificate served',
    async () => {
      const now = await servedCertificate(ports[1], tlsDirs[0]);
      return now.fingerprint256 !== first.fingerprint256 ? now : undefined;
    },
    VALIDITY_MS * 2,
  );
  assert.ok(Date.parse(rotated.valid_to) > Date.parse(first.valid_to));
  await allNodes(g, 'tls', 'every node still Online after the rotation');

  const tlsUntil = Date.now();
  // tls -> none, live.
  await g.svc.api.call('PATCH', `/api/v1/gateways/${g.gateway}`, { encryption: 'none' });
  const plainNodes = await allNodes(g, 'plain', 'every node Online in plain HTTP');
  for (const n of plainNodes) assert.equal(n.tls, false);
  assert.equal((await plainGet(ports[0])).status, 200);

  const run = await waitRun(g, runId, 120_000);
  assert.equal(run.status, 'succeeded', JSON.stringify(run.error));
  const copies = run.tasks.filter((tk: any) => tk.kind === 'copy');
  assert.equal(copies.length, 60);
  assert.ok(new Set(copies.map((tk: any) => tk.node)).size >= 2, 'tasks were dispatched across nodes');
  // Nothing failed or was retried across the three changes and the rotation.
  for (const tk of copies) assert.equal(tk.attempts, 1, `${tk.id} ran once`);
  // And tasks were dispatched to other nodes while every port took TLS only.
  const overTls = copies.filter((tk: any) => {
    const started = Date.parse(tk.attemptList.at(-1).startedAt);
    return tk.node !== dispatcher && started > tlsFrom && started < tlsUntil;
  });
  assert.ok(overTls.length >= 2, `${overTls.length} tasks dispatched to workers over TLS`);
  assert.deepEqual(treeDigest(join(g.root, 'out')), treeDigest(join(g.root, 'in')));
  v = await nodesView(g);
  assert.deepEqual(
    v.nodes.map((n: any) => n.name).sort(),
    ['node-1', 'node-2', 'node-3'],
    'no node was deleted',
  );
  const events = await g.svc.api.call('GET', `/api/v1/gateways/${g.gateway}/events`);
  assert.ok(events.events.some((e: any) => e.kind === 'encryption' && /set to tls/.test(e.message)));
});

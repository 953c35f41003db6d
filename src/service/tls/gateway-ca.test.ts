/**
 * The gateway CA: a self-signed CA certificate, and node certificates for a node's own public key
 * that chain to it, name the advertise address (IP or DNS), serve both ends of mutual TLS, and are
 * due for renewal two thirds into their validity. A key that is not P-256 is refused.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { X509Certificate, createPrivateKey, generateKeyPairSync } from 'node:crypto';
import { createGatewayCa, fingerprint, issueNodeCertificate } from './gateway-ca.ts';

const NOW = Date.now();

test('node certificates chain to the gateway CA, name the address, and renew at two thirds', async () => {
  const ca = await createGatewayCa('sales', NOW);
  const caCert = new X509Certificate(ca.certPem);
  assert.equal(caCert.ca, true);
  assert.match(caCert.subject, /Ferry gateway sales CA/);
  assert.equal(createPrivateKey(ca.keyPem).asymmetricKeyType, 'ec');

  const node = generateKeyPairSync('ec', { namedCurve: 'prime256v1' });
  const publicKey = node.publicKey.export({ type: 'spki', format: 'der' }).toString('base64');
  const validity = 30 * 86_400_000;
  const ip = await issueNodeCertificate(ca, { name: 'node-1', host: '10.1.2.3', publicKey }, NOW, validity);
  const cert = new X509Certificate(ip.certPem);
  assert.ok(cert.checkIssued(caCert) && cert.verify(caCert.publicKey), 'signed by the gateway CA');
  assert.ok(cert.checkPrivateKey(node.privateKey), "for the node's own key");
  assert.equal(cert.subjectAltName, 'IP Address:10.1.2.3');
  assert.equal(cert.checkIP('10.1.2.3'), '10.1.2.3');
  assert.equal(cert.ca, false);
  assert.deepEqual(cert.keyUsage?.sort(), ['1.3.6.1.5.5.7.3.1', '1.3.6.1.5.5.7.3.2'], 'server and client');
  assert.ok(Math.abs(ip.notAfter - (NOW + validity)) < 1000);
  assert.ok(Math.abs(ip.renewAt - (NOW + (2 * validity) / 3)) < 1000);
  assert.equal(fingerprint(ip.certPem), cert.fingerprint256);

  const dns = await issueNodeCertificate(ca, { name: 'node-2', host: 'n2.example', publicKey }, NOW, 9000);
  assert.equal(new X509Certificate(dns.certPem).subjectAltName, 'DNS:n2.example');

  // Another gateway's CA did not sign it.
  const other = new X509Certificate((await createGatewayCa('other', NOW)).certPem);
  assert.equal(cert.verify(other.publicKey), false);

  const ed = generateKeyPairSync('ed25519')
    .publicKey.export({ type: 'spki', format: 'der' })
    .toString('base64');
  await assert.rejects(
    issueNodeCertificate(ca, { name: 'node-3', host: '10.1.2.4', publicKey: ed }, NOW, validity),
    /not an ECDSA P-256 public key/,
  );
});

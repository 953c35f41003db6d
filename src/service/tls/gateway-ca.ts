/**
 * Each gateway's own certificate authority, kept by the service: it issues every node of the gateway
 * a certificate for node-to-node TLS, so no public CA is needed and no certificate is copied by hand.
 * The node makes its own ECDSA P-256 key pair and sends only the public key (in its heartbeat); the
 * certificate names the node's advertise address (IP or DNS subjectAltName) and is good for both ends
 * of a connection (serverAuth and clientAuth: mutual TLS). The CA's private key is sealed at rest
 * with the service's master key (common/crypto.ts), like every other secret of the service.
 */
import './reflect-metadata.ts';
import * as x509 from '@peculiar/x509';
import { isIP } from 'node:net';
import { randomBytes, webcrypto, X509Certificate } from 'node:crypto';
import { FerryError } from '../../common/errors.ts';

x509.cryptoProvider.set(webcrypto as unknown as Parameters<typeof x509.cryptoProvider.set>[0]);

const ALG = { name: 'ECDSA', namedCurve: 'P-256', hash: 'SHA-256' } as const;
/** The CA outlives any node certificate by far; rotating a CA is not built (see README). */
const CA_VALIDITY_MS = 20 * 365 * 86_400_000;
/** Certificates start a little in the past: a peer whose clock is behind accepts them all the same. */
const BACKDATE_MS = 5 * 60_000;

export interface GatewayCa {
  certPem: string;
  keyPem: string;
}

export interface IssuedCertificate {
  certPem: string;
  notAfter: number;
  /** When to issue the next one: two thirds into its validity. */
  renewAt: number;
}

function serial(): string {
  const b = randomBytes(16);
  b[0] = (b[0] ?? 0) & 0x7f; // positive
  return b.toString('hex');
}

function pem(label: string, der: ArrayBuffer): string {
  const b64 = Buffer.from(der).toString('base64').replace(/.{64}/g, '$&\n');
  return `-----BEGIN ${label}-----\n${b64.replace(/\n$/, '')}\n-----END ${label}-----\n`;
}

/** A distinguished name value with only characters that need no escaping. */
function dnValue(s: string): string {
  return s.replace(/[^A-Za-z0-9 ._-]/g, '_');
}

export async function createGatewayCa(gatewayName: string, now: number): Promise<GatewayCa> {
  const keys = await webcrypto.subtle.generateKey(ALG, true, ['sign', 'verify']);
  const cert = await x509.X509CertificateGenerator.createSelfSigned({
    serialNumber: serial(),
    name: `CN=Ferry gateway ${dnValue(gatewayName)} CA, O=Ferry`,
    notBefore: new Date(now - BACKDATE_MS),
    notAfter: new Date(now + CA_VALIDITY_MS),
    signingAlgorithm: ALG,
    keys,
    extensions: [
      new x509.BasicConstraintsExtension(true, 0, true),
      new x509.KeyUsagesExtension(x509.KeyUsageFlags.keyCertSign | x509.KeyUsageFlags.cRLSign, true),
      await x509.SubjectKeyIdentifierExtension.create(keys.publicKey),
    ],
  });
  return {
    certPem: cert.toString('pem'),
    keyPem: pem('PRIVATE KEY', await webcrypto.subtle.exportKey('pkcs8', keys.privateKey)),
  };
}

function pemBody(text: string): Buffer {
  return Buffer.from(text.replace(/-----[^-]+-----/g, '').replace(/\s+/g, ''), 'base64');
}

/**
 * A certificate for `node`'s public key (base64 SPKI DER, ECDSA P-256), naming `host` (its advertise
 * address), valid `validityMs` from `now`.
 */
export async function issueNodeCertificate(
  ca: GatewayCa,
  node: { name: string; host: string; publicKey: string },
  now: number,
  validityMs: number,
): Promise<IssuedCertificate> {
  let publicKey: webcrypto.CryptoKey;
  try {
    publicKey = await webcrypto.subtle.importKey('spki', Buffer.from(node.publicKey, 'base64'), ALG, true, [
      'verify',
    ]);
  } catch (err) {
    throw new FerryError(
      'bad_request',
      'encryption.publicKey is not an ECDSA P-256 public key (base64 SPKI DER)',
      {
        cause: err,
      },
    );
  }
  const caCert = new x509.X509Certificate(ca.certPem);
  const signingKey = await webcrypto.subtle.importKey('pkcs8', pemBody(ca.keyPem), ALG, false, ['sign']);
  const notAfter = now + validityMs;
  const cert = await x509.X509CertificateGenerator.create({
    serialNumber: serial(),
    subject: `CN=${dnValue(node.name)}, O=Ferry`,
    issuer: caCert.subject,
    notBefore: new Date(now - BACKDATE_MS),
    notAfter: new Date(notAfter),
    signingAlgorithm: ALG,
    publicKey,
    signingKey,
    extensions: [
      new x509.BasicConstraintsExtension(false, undefined, true),
      new x509.KeyUsagesExtension(x509.KeyUsageFlags.digitalSignature, true),
      new x509.ExtendedKeyUsageExtension([
        x509.ExtendedKeyUsage.serverAuth,
        x509.ExtendedKeyUsage.clientAuth,
      ]),
      new x509.SubjectAlternativeNameExtension([
        isIP(node.host) ? { type: 'ip', value: node.host } : { type: 'dns', value: node.host },
      ]),
      await x509.AuthorityKeyIdentifierExtension.create(caCert, false),
    ],
  });
  const certPem = cert.toString('pem');
  // The certificate as Node will read it (X.509 times have whole seconds).
  const issued = new X509Certificate(certPem);
  const end = Date.parse(issued.validTo);
  return { certPem, notAfter: end, renewAt: now + Math.floor((2 * (end - now)) / 3) };
}

/** sha256 fingerprint of a PEM certificate, as node:crypto prints it (the node reports the same). */
export function fingerprint(certPem: string): string {
  return new X509Certificate(certPem).fingerprint256;
}

/**
 * TLS to the service: reading the PEM files it is configured with, and turning a failed handshake
 * into an error that names the certificate problem and the flag that fixes it (instead of Node's
 * "self-signed certificate in certificate chain" with nothing else).
 */
import { readFileSync } from 'node:fs';
import { FerryError } from './errors.ts';

/** Reads a PEM file given with `flag`; a missing or non-PEM file is a clear bad_request. */
export function readPemFile(path: string, flag: string): Buffer {
  let pem: Buffer;
  try {
    pem = readFileSync(path);
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    throw new FerryError(
      'bad_request',
      `cannot read ${flag} ${path}: ${code === 'ENOENT' ? 'no such file' : (err as Error).message}`,
    );
  }
  if (!pem.includes('-----BEGIN ')) {
    throw new FerryError('bad_request', `${flag} ${path} is not a PEM file (no "-----BEGIN" line)`);
  }
  return pem;
}

/** OpenSSL's verification failures, as Node reports them in `err.code`. */
const UNTRUSTED = new Set([
  'DEPTH_ZERO_SELF_SIGNED_CERT',
  'SELF_SIGNED_CERT_IN_CHAIN',
  'UNABLE_TO_VERIFY_LEAF_SIGNATURE',
  'UNABLE_TO_GET_ISSUER_CERT',
  'UNABLE_TO_GET_ISSUER_CERT_LOCALLY',
  'CERT_SIGNATURE_FAILURE',
  'CERT_UNTRUSTED',
  'CERT_REJECTED',
  'INVALID_CA',
]);
const EXPIRED = new Set(['CERT_HAS_EXPIRED', 'CERT_NOT_YET_VALID']);

/**
 * The service's certificate could not be verified, or one side does not speak TLS: a FerryError
 * naming the problem and what to do; undefined for any other error.
 */
export function serviceTlsProblem(err: unknown, base: string): FerryError | undefined {
  if (!(err instanceof Error)) return undefined;
  const code = (err as NodeJS.ErrnoException).code ?? '';
  const https = base.startsWith('https:');
  // Node appends advice about --use-system-ca that is not how Ferry is configured.
  const why = err.message.replace(/; if the root CA is installed locally.*$/, '');
  if (UNTRUSTED.has(code)) {
    return new FerryError('unavailable', `service ${base}: its TLS certificate is not trusted (${why})`, {
      cause: err,
      hint: 'pass --service-ca FILE (or set FERRY_SERVICE_CA) with the CA certificate (PEM) that signed the service certificate',
    });
  }
  if (EXPIRED.has(code)) {
    return new FerryError('unavailable', `service ${base}: its TLS certificate ${err.message}`, {
      cause: err,
      hint: "renew the service's certificate (--tls-cert)",
    });
  }
  if (code === 'ERR_TLS_CERT_ALTNAME_INVALID') {
    return new FerryError(
      'unavailable',
      `service ${base}: its TLS certificate is not for this address (${err.message})`,
      {
        cause: err,
        hint: "use the host name the certificate names in --service, or add this address to the certificate's subjectAltName",
      },
    );
  }
  if (https && (code === 'EPROTO' || /wrong version number|packet length too long/i.test(err.message))) {
    return new FerryError('unavailable', `service ${base}: it does not speak TLS (${err.message})`, {
      cause: err,
      hint: `use http:// in --service, or start the service with --tls-cert and --tls-key`,
    });
  }
  return undefined;
}

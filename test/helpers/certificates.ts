/** Test certificates for node-to-node TLS, made with the openssl CLI (installed by .ci/run). */
import { execFileSync, spawnSync } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';

export const OPENSSL = spawnSync('openssl', ['version']).status === 0;

/** A throwaway CA and a certificate for 127.0.0.1 (SAN IP) signed by it, made with the openssl CLI. */
export function makeCertificates(dir: string): { cert: string; key: string; ca: string } {
  const p = (f: string): string => join(dir, f);
  const ssl = (...args: string[]): void => {
    execFileSync('openssl', args, { stdio: 'pipe' });
  };
  ssl(
    'req',
    '-x509',
    '-newkey',
    'ec',
    '-pkeyopt',
    'ec_paramgen_curve:prime256v1',
    '-nodes',
    '-days',
    '2',
    '-subj',
    '/CN=Ferry test CA',
    '-keyout',
    p('ca.key'),
    '-out',
    p('ca.pem'),
  );
  ssl(
    'req',
    '-new',
    '-newkey',
    'ec',
    '-pkeyopt',
    'ec_paramgen_curve:prime256v1',
    '-nodes',
    '-subj',
    '/CN=127.0.0.1',
    '-keyout',
    p('node.key'),
    '-out',
    p('node.csr'),
  );
  writeFileSync(p('san.ext'), 'subjectAltName=IP:127.0.0.1\nbasicConstraints=CA:FALSE\n');
  ssl(
    'x509',
    '-req',
    '-in',
    p('node.csr'),
    '-CA',
    p('ca.pem'),
    '-CAkey',
    p('ca.key'),
    '-CAcreateserial',
    '-days',
    '2',
    '-extfile',
    p('san.ext'),
    '-out',
    p('node.pem'),
  );
  return { cert: p('node.pem'), key: p('node.key'), ca: p('ca.pem') };
}

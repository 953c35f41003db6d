/** Test certificates for node-to-node TLS, made with the openssl CLI (installed by .ci/run). */
import { execFileSync, spawnSync } from 'node:child_process';
import { existsSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

export const OPENSSL = spawnSync('openssl', ['version']).status === 0;

/**
 * A throwaway CA and a certificate signed by it, made with the openssl CLI: for 127.0.0.1 (SAN IP)
 * unless `sans` says otherwise (openssl syntax: `DNS:a.example,IP:127.0.0.1`). Several certificates
 * of one CA: call again with the same `dir` and another `name`.
 */
export function makeCertificates(
  dir: string,
  o: { sans?: string; name?: string } = {},
): { cert: string; key: string; ca: string } {
  const name = o.name ?? 'node';
  const p = (f: string): string => join(dir, f);
  const ssl = (...args: string[]): void => {
    execFileSync('openssl', args, { stdio: 'pipe' });
  };
  if (!existsSync(p('ca.pem')))
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
    p(`${name}.key`),
    '-out',
    p(`${name}.csr`),
  );
  writeFileSync(p(`${name}.ext`), `subjectAltName=${o.sans ?? 'IP:127.0.0.1'}\nbasicConstraints=CA:FALSE\n`);
  ssl(
    'x509',
    '-req',
    '-in',
    p(`${name}.csr`),
    '-CA',
    p('ca.pem'),
    '-CAkey',
    p('ca.key'),
    '-CAcreateserial',
    '-days',
    '2',
    '-extfile',
    p(`${name}.ext`),
    '-out',
    p(`${name}.pem`),
  );
  return { cert: p(`${name}.pem`), key: p(`${name}.key`), ca: p('ca.pem') };
}

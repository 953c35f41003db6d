/**
 * This node's side of node-to-node encryption (protocol/encryption.ts): its certificate, and the
 * state of its transport as the gateway's mode moves it.
 *
 * The certificate is either the user's (--tls-cert, --tls-key, --tls-ca; peers must chain to that
 * CA) or, with none given, one from the gateway's CA: the node makes an ECDSA P-256 key once, keeps
 * it in DATA_DIR/tls/node-key.pem (mode 0600; it never leaves the node), sends the public half in
 * every heartbeat, and takes the certificate (and the CA certificate) from a heartbeat reply,
 * again when the service rotates it. User files that cannot be used are a `problem`, reported in
 * each heartbeat and tried again at each one: the node stays as it is (plain) meanwhile.
 *
 * The transport (sends TLS? takes plain?) moves one step per heartbeat reply, as the top of
 * protocol/encryption.ts describes, and is kept in DATA_DIR/tls/transport.json so a restarted node
 * starts as it was (a node of a TLS gateway does not come back speaking plain).
 */
import { X509Certificate, createPrivateKey, createPublicKey, generateKeyPairSync } from 'node:crypto';
import { createSecureContext } from 'node:tls';
import { existsSync, mkdirSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { Logger } from '../common/logger.ts';
import { readPemFile } from '../common/tls.ts';
import { toFerryError } from '../common/errors.ts';
import {
  isEncryptionMode,
  type EncryptionMode,
  type EncryptionOrderT,
  type TlsCertificateFactsT,
  type TlsReportT,
} from '../protocol/encryption.ts';
import type { PeerTlsMaterial } from './peer-server.ts';

export interface UserTlsFiles {
  cert: string;
  key: string;
  ca: string;
}

interface Material extends PeerTlsMaterial {
  facts: TlsCertificateFactsT;
}

interface Transport {
  mode: EncryptionMode;
  sendsTls: boolean;
  acceptsPlain: boolean;
}

const PLAIN: Transport = { mode: 'none', sendsTls: false, acceptsPlain: true };

function writeFileAtomic(file: string, text: string, mode: number): void {
  writeFileSync(`${file}.tmp`, text, { mode });
  renameSync(`${file}.tmp`, file);
}

/** The certificate's facts; throws when it is not a certificate for `key`, or has expired. */
function certificateFacts(
  cert: Buffer,
  key: Buffer,
  source: TlsCertificateFactsT['source'],
  now: number,
): TlsCertificateFactsT {
  const x = new X509Certificate(cert);
  if (!x.checkPrivateKey(createPrivateKey(key)))
    throw new Error('the certificate is not for this private key');
  const expiresAt = Date.parse(x.validTo);
  if (expiresAt <= now) throw new Error(`the certificate expired at ${new Date(expiresAt).toISOString()}`);
  return { source, fingerprint: x.fingerprint256, expiresAt };
}

export class NodeTls {
  readonly #dir: string;
  readonly #user: UserTlsFiles | undefined;
  readonly #log: Logger;
  readonly #listeners: ((m: PeerTlsMaterial) => void)[] = [];
  /** Auto certificates: this node's key (PEM) and its public half (base64 SPKI DER). */
  #auto: { keyPem: Buffer; publicKey: string } | undefined;
  #material: Material | undefined;
  #problem: string | undefined;
  #t: Transport = { ...PLAIN };

  constructor(o: { dataDir: string; user: UserTlsFiles | undefined; log: Logger }) {
    this.#dir = join(o.dataDir, 'tls');
    this.#user = o.user;
    this.#log = o.log;
  }

  /** Reads (or makes) what the data dir keeps; call once, before the peer port serves. */
  load(now: number): void {
    mkdirSync(this.#dir, { recursive: true, mode: 0o700 });
    if (this.#user) this.#loadUser(now);
    else this.#loadAuto(now);
    try {
      const saved = JSON.parse(readFileSync(this.#file('transport.json'), 'utf8')) as Partial<Transport>;
      if (isEncryptionMode(saved.mode) && this.#material) {
        this.#t = {
          mode: saved.mode,
          sendsTls: saved.sendsTls === true,
          acceptsPlain: saved.acceptsPlain !== false,
        };
      }
    } catch {
      // first start, or a file from elsewhere: start plain, the first heartbeat reply says the mode
    }
  }

  /** Hears every new certificate (an auto one issued or rotated). */
  onMaterial(listener: (m: PeerTlsMaterial) => void): void {
    this.#listeners.push(listener);
  }

  get material(): PeerTlsMaterial | undefined {
    return this.#material;
  }

  get sendsTls(): boolean {
    return this.#t.sendsTls;
  }

  get acceptsPlain(): boolean {
    return this.#t.acceptsPlain;
  }

  /** TLS only: sends TLS and refuses plain (the heartbeat's `tls`). */
  get tlsOnly(): boolean {
    return this.#t.sendsTls && !this.#t.acceptsPlain;
  }

  report(): TlsReportT {
    return {
      mode: this.#t.mode,
      sendsTls: this.#t.sendsTls,
      acceptsPlain: this.#t.acceptsPlain,
      ...(this.#material ? { certificate: this.#material.facts } : {}),
      ...(this.#auto ? { publicKey: this.#auto.publicKey } : {}),
      ...(this.#problem === undefined ? {} : { problem: this.#problem }),
    };
  }

  /** A heartbeat reply: a new certificate if any, then one step of the transport towards the mode. */
  heed(order: EncryptionOrderT | undefined, now: number): void {
    if (order?.certificate !== undefined && order.ca !== undefined)
      this.#takeIssued(order.certificate, order.ca, now);
    if (this.#user && this.#problem !== undefined) this.#loadUser(now);
    // A service from before encryption modes says nothing: plain, as it knew.
    const mode = order?.mode ?? 'none';
    const settled = order?.settled ?? true;
    const t = this.#t;
    const next: Transport = { ...t, mode };
    if (mode === 'tls') {
      if (!this.#material) Object.assign(next, { sendsTls: false, acceptsPlain: true });
      else if (!t.sendsTls) Object.assign(next, { sendsTls: true, acceptsPlain: true });
      else if (settled && t.mode === 'tls') next.acceptsPlain = false;
    } else {
      next.acceptsPlain = true;
      if (t.sendsTls && ((settled && t.mode === 'none' && t.acceptsPlain) || !this.#material))
        next.sendsTls = false;
    }
    if (next.mode !== t.mode || next.sendsTls !== t.sendsTls || next.acceptsPlain !== t.acceptsPlain) {
      this.#t = next;
      this.#log.info(
        { mode, sendsTls: next.sendsTls, acceptsPlain: next.acceptsPlain },
        'node-to-node transport changed',
      );
      try {
        writeFileAtomic(this.#file('transport.json'), JSON.stringify(next), 0o600);
      } catch (err) {
        this.#log.warn({ err: (err as Error).message }, 'cannot keep the node-to-node transport state');
      }
    }
  }

  #file(name: string): string {
    return join(this.#dir, name);
  }

  #loadUser(now: number): void {
    const u = this.#user;
    if (!u) return;
    try {
      const cert = readPemFile(u.cert, '--tls-cert');
      const key = readPemFile(u.key, '--tls-key');
      const ca = readPemFile(u.ca, '--tls-ca');
      let facts: TlsCertificateFactsT;
      try {
        facts = certificateFacts(cert, key, 'user', now);
        createSecureContext({ cert, key, ca });
      } catch (err) {
        throw new Error(`--tls-cert ${u.cert}: ${(err as Error).message}`, { cause: err });
      }
      this.#set({ cert, key, ca, facts });
      if (this.#problem !== undefined) this.#log.info('node-to-node TLS certificate files usable again');
      this.#problem = undefined;
    } catch (err) {
      const problem = toFerryError(err).message;
      if (problem !== this.#problem)
        this.#log.warn({ problem }, 'cannot use the node-to-node TLS certificate');
      this.#problem = problem;
    }
  }

  #loadAuto(now: number): void {
    const keyFile = this.#file('node-key.pem');
    let keyPem: Buffer;
    if (existsSync(keyFile)) keyPem = readFileSync(keyFile);
    else {
      const pair = generateKeyPairSync('ec', { namedCurve: 'prime256v1' });
      keyPem = Buffer.from(pair.privateKey.export({ type: 'pkcs8', format: 'pem' }));
      writeFileAtomic(keyFile, keyPem.toString(), 0o600);
    }
    const publicKey = createPublicKey(keyPem).export({ type: 'spki', format: 'der' }).toString('base64');
    this.#auto = { keyPem, publicKey };
    try {
      const cert = readFileSync(this.#file('node-cert.pem'));
      const ca = readFileSync(this.#file('ca.pem'));
      this.#set({ cert, key: keyPem, ca, facts: certificateFacts(cert, keyPem, 'gateway', now) });
    } catch {
      // none yet, or expired: the next heartbeat reply brings one
    }
  }

  #takeIssued(certPem: string, caPem: string, now: number): void {
    const auto = this.#auto;
    if (!auto) return;
    const cert = Buffer.from(certPem);
    const ca = Buffer.from(caPem);
    let facts: TlsCertificateFactsT;
    try {
      facts = certificateFacts(cert, auto.keyPem, 'gateway', now);
      if (!new X509Certificate(cert).checkIssued(new X509Certificate(ca)))
        throw new Error('the certificate is not issued by the CA sent with it');
    } catch (err) {
      this.#log.warn({ err: (err as Error).message }, 'certificate from the service refused');
      return;
    }
    writeFileAtomic(this.#file('ca.pem'), caPem, 0o600);
    writeFileAtomic(this.#file('node-cert.pem'), certPem, 0o600);
    this.#set({ cert, key: auto.keyPem, ca, facts });
    this.#log.info(
      { expiresAt: new Date(facts.expiresAt).toISOString() },
      "node-to-node TLS certificate from the gateway's CA in use",
    );
  }

  #set(m: Material): void {
    if (this.#material?.facts.fingerprint === m.facts.fingerprint && this.#material.ca.equals(m.ca)) return;
    this.#material = m;
    for (const listener of this.#listeners) listener(m);
  }
}

/**
 * Keeps this node's credential set (credential-store.ts) in step with its gateway's, after each
 * heartbeat reply (protocol/credentials.ts):
 *
 * - Every node: if the gateway has no key yet, make one (the service keeps the first one reported).
 * - The dispatcher: takes what the service relays (values sealed to the gateway key); pulls from a
 *   peer what that peer holds newer than it (and the gateway key, if it lacks it); then pushes to each
 *   live worker what the worker is behind on, sealed to the worker's own seal key, with the lease
 *   token that shows it is the dispatcher of this epoch. A worker that could not be reached is tried
 *   again after the next heartbeat; `resync` (raised by `ferry gateway resync-credentials`) pushes the
 *   whole set to every worker once.
 *
 * One round at a time: a round still running when the next reply comes lets that reply pass.
 */
import type { Logger } from '../common/logger.ts';
import { toFerryError } from '../common/errors.ts';
import type { HeartbeatResponseT, PeerViewT } from '../protocol/agent.ts';
import {
  asBoundCredential,
  copyBoxId,
  setBoxId,
  type CredentialEntryT,
  type CredentialPullResponseT,
  type CredentialPushT,
} from '../protocol/credentials.ts';
import { openSecrets, sealSecrets } from '../protocol/sealed-secrets.ts';
import { newGatewayKeyPair, publicOf, type CredentialStore } from './credential-store.ts';
import type { PeerTarget } from './peer-client.ts';

export interface CredentialSyncDeps {
  store: CredentialStore;
  selfId: string;
  gatewayId: string;
  sealPrivateKey: string;
  call<T>(peer: PeerTarget, path: string, body: unknown): Promise<T>;
  log: Logger;
  /** The time after a push during which the same versions are not pushed to the same worker again. */
  repushAfterMs?: number;
}

/** The entries of `store` a peer holding `theirs` is behind on (all of them with `all`). */
function behind(store: CredentialStore, theirs: Record<string, number>, all: boolean): string[] {
  return store.names().filter((name) => all || store.version(name) > (theirs[name] ?? 0));
}

/** An entry of the set, sealed to one node for that node only. */
export function sealEntry(
  store: CredentialStore,
  name: string,
  toNodeId: string,
  toSealKey: string,
): CredentialEntryT | undefined {
  const e = store.get(name);
  if (!e) return undefined;
  return {
    linkedService: name,
    version: e.version,
    box: sealSecrets(
      toSealKey,
      { values: e.values, endpoint: e.endpoint },
      copyBoxId(toNodeId, name, e.version),
      'credential-copy',
    ),
  };
}

/** The gateway's private key sealed to one node. */
export function sealGatewayKey(
  store: CredentialStore,
  toNodeId: string,
  toSealKey: string,
): string | undefined {
  const k = store.gatewayKey;
  return k ? sealSecrets(toSealKey, { privateKey: k.privateKey }, toNodeId, 'gateway-key') : undefined;
}

/**
 * Opens what a peer sent this node: the gateway key (kept only if it is `gatewayKey`, the gateway's
 * as the service knows it) and entries (each kept only if newer). Returns how many entries were new.
 */
export function takeFromPeer(
  store: CredentialStore,
  self: { nodeId: string; sealPrivateKey: string },
  sent: { gatewayKey?: string | undefined; entries: readonly CredentialEntryT[] },
  gatewayKey: string | null,
): number {
  if (sent.gatewayKey !== undefined && gatewayKey !== null && store.gatewayKey?.publicKey !== gatewayKey) {
    const opened = openSecrets(self.sealPrivateKey, sent.gatewayKey, self.nodeId, 'gateway-key');
    const privateKey = String(opened.privateKey);
    if (publicOf(privateKey) === gatewayKey) store.setGatewayKey({ publicKey: gatewayKey, privateKey });
  }
  let taken = 0;
  for (const e of sent.entries) {
    if (e.version <= store.version(e.linkedService)) continue;
    const bound = asBoundCredential(
      openSecrets(
        self.sealPrivateKey,
        e.box,
        copyBoxId(self.nodeId, e.linkedService, e.version),
        'credential-copy',
      ),
    );
    if (store.put(e.linkedService, e.version, bound)) taken++;
  }
  return taken;
}

export class CredentialSync {
  readonly #d: CredentialSyncDeps;
  #running = false;
  #resyncSeen: number | undefined;
  /** worker node id -> what was last pushed to it, and when. */
  readonly #pushed = new Map<string, { key: string; at: number }>();

  constructor(deps: CredentialSyncDeps) {
    this.#d = deps;
  }

  /** After each heartbeat reply; never throws (a failed round is retried after the next reply). */
  async heed(res: HeartbeatResponseT): Promise<void> {
    const gc = res.credentials;
    if (!gc || this.#running) return;
    this.#running = true;
    try {
      const { store } = this.#d;
      if (gc.gatewayKey === null && store.gatewayKey === null) {
        store.setGatewayKey(newGatewayKeyPair());
        this.#d.log.info('made the gateway credential key (the service keeps the first one reported)');
      }
      if (res.role !== 'dispatcher') {
        this.#resyncSeen = undefined;
        return;
      }
      const resync = this.#resyncSeen !== undefined && gc.resync > this.#resyncSeen;
      this.#resyncSeen = gc.resync;
      this.#takeRelays(gc.relays, gc.gatewayKey);
      await this.#pullNewer(res.peers, gc.gatewayKey);
      if (res.dispatcherLease !== undefined)
        await this.#pushToWorkers(res.peers, res.epoch, res.dispatcherLease, gc.gatewayKey, resync);
    } catch (err) {
      this.#d.log.warn({ err: toFerryError(err).message }, 'credential sync round failed; retrying');
    } finally {
      this.#running = false;
    }
  }

  #takeRelays(relays: readonly CredentialEntryT[], gatewayKey: string | null): void {
    const { store, gatewayId, log } = this.#d;
    const key = store.gatewayKey;
    if (!key || key.publicKey !== gatewayKey) return; // pulled from a peer first
    for (const r of relays) {
      if (r.version <= store.version(r.linkedService)) continue;
      try {
        const bound = asBoundCredential(
          openSecrets(key.privateKey, r.box, setBoxId(gatewayId, r.linkedService, r.version), 'credential'),
        );
        store.put(r.linkedService, r.version, bound);
        log.info(
          { linkedService: r.linkedService, version: r.version },
          'credentials taken from the service relay',
        );
      } catch (err) {
        log.warn(
          { linkedService: r.linkedService, version: r.version, err: toFerryError(err).message },
          'a relayed credential cannot be opened with the gateway key; skipped',
        );
      }
    }
  }

  async #pullNewer(peers: readonly PeerViewT[], gatewayKey: string | null): Promise<void> {
    const { store, log } = this.#d;
    const needKey = gatewayKey !== null && store.gatewayKey?.publicKey !== gatewayKey;
    for (const peer of peers) {
      const c = peer.credentials;
      if (!c || peer.live !== true) continue;
      const newer = Object.entries(c.versions)
        .filter(([name, v]) => v > store.version(name))
        .map(([name]) => name);
      const keyHere = needKey && store.gatewayKey?.publicKey !== gatewayKey && c.gatewayKey === gatewayKey;
      if (newer.length === 0 && !keyHere) continue;
      try {
        const sent = await this.#d.call<CredentialPullResponseT>(peer, '/v1/credentials/pull', {
          gatewayKey: keyHere,
          linkedServices: newer,
        });
        const taken = takeFromPeer(
          store,
          { nodeId: this.#d.selfId, sealPrivateKey: this.#d.sealPrivateKey },
          sent,
          gatewayKey,
        );
        log.info({ from: peer.name, taken, gatewayKey: keyHere }, 'credentials pulled from a peer');
      } catch (err) {
        log.warn({ from: peer.name, err: toFerryError(err).message }, 'cannot pull credentials from a peer');
      }
    }
  }

  async #pushToWorkers(
    peers: readonly PeerViewT[],
    epoch: number,
    lease: string,
    gatewayKey: string | null,
    resync: boolean,
  ): Promise<void> {
    const { store, log } = this.#d;
    const now = Date.now();
    const holdKey = gatewayKey !== null && store.gatewayKey?.publicKey === gatewayKey;
    await Promise.all(
      peers.map(async (peer) => {
        const c = peer.credentials;
        if (!c || peer.live !== true || !peer.sealPublicKey) return;
        const names = behind(store, c.versions, resync);
        const giveKey = holdKey && (resync || c.gatewayKey !== gatewayKey);
        if (names.length === 0 && !giveKey) return;
        const what = `${giveKey ? 'key;' : ''}${names.map((n) => `${n}@${store.version(n)}`).join(',')}`;
        const last = this.#pushed.get(peer.nodeId);
        if (!resync && last?.key === what && now - last.at < (this.#d.repushAfterMs ?? 3_000)) return;
        this.#pushed.set(peer.nodeId, { key: what, at: now });
        const sealKey = peer.sealPublicKey;
        const body: CredentialPushT = {
          epoch,
          lease,
          entries: names.flatMap((n) => sealEntry(store, n, peer.nodeId, sealKey) ?? []),
        };
        const keyBox = giveKey ? sealGatewayKey(store, peer.nodeId, sealKey) : undefined;
        if (keyBox !== undefined) body.gatewayKey = keyBox;
        try {
          await this.#d.call(peer, '/v1/credentials/push', body);
          log.info(
            { to: peer.name, entries: body.entries.length, gatewayKey: giveKey },
            'credentials pushed',
          );
        } catch (err) {
          this.#pushed.delete(peer.nodeId);
          log.warn({ to: peer.name, err: toFerryError(err).message }, 'cannot push credentials; retrying');
        }
      }),
    );
  }
}

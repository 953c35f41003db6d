/**
 * Who may call this node's peer port: the members of its gateway as its own latest heartbeat lists
 * them (node id -> Ed25519 public key). Everything is decided from the request's headers, before a
 * byte of its body is read: gateway, recipient, time window, membership, signature, then the nonce,
 * remembered until the time window has passed (a replay inside it is refused; memory is bounded).
 */
import type { IncomingHttpHeaders } from 'node:http';
import type { KeyObject } from 'node:crypto';
import { FerryError } from '../common/errors.ts';
import { parsePublicKey } from '../protocol/node-keys.ts';
import {
  NONCE_PATTERN,
  PEER_CLOCK_SKEW_MS,
  PEER_HEADER_BODY_SHA256,
  PEER_HEADER_GATEWAY,
  PEER_HEADER_NODE,
  PEER_HEADER_NONCE,
  PEER_HEADER_SIGNATURE,
  PEER_HEADER_TIME,
  PEER_HEADER_TO,
  SHA256_PATTERN,
  verifyPeerRequest,
} from '../protocol/peer.ts';

/**
 * The answer to a request from a node this one does not (yet) count as a member, with the reason
 * `not_a_member`. A registered node gets it from a peer that has not heard of it yet (members are
 * learnt from each heartbeat): the peer is reachable all the same. Nodes from before the reason
 * recognise this answer by its text: keep it as it is.
 */
export const NOT_A_MEMBER = 'request is not signed by a current member of this gateway';

/** Nonces remembered at most; past it (a member sending thousands a second) requests wait their turn. */
export const MAX_NONCES = 100_000;

/** A request's sender and recipient, as checked from its headers. */
export interface PeerCaller {
  kind: 'peer';
  /** The sender: a current member of this node's gateway. */
  nodeId: string;
  /** The gateway of both (this node's). */
  gatewayId: string;
  /** The recipient: this node. */
  toNodeId: string;
  /** The body must hash to this (checked once it is read). */
  bodySha256: string;
}

interface Member {
  keyText: string;
  key: KeyObject;
  /** Its X25519 seal key as the service lists it: what is sent to it sealed is sealed to this. */
  sealKey: string | null;
}

function header(h: IncomingHttpHeaders, name: string): string | undefined {
  const v = h[name];
  return typeof v === 'string' ? v : undefined;
}

function refuse(message: string): FerryError {
  return new FerryError('unauthorized', message);
}

export class PeerAuth {
  #self: { gatewayId: string; nodeId: string } | undefined;
  #members = new Map<string, Member>();
  /** `${nodeId} ${nonce}` -> when it may be forgotten (its time + the window). */
  readonly #nonces = new Map<string, number>();
  #nextSweep = 0;
  readonly #maxNonces: number;

  constructor(maxNonces = MAX_NONCES) {
    this.#maxNonces = maxNonces;
  }

  setSelf(self: { gatewayId: string; nodeId: string }): void {
    this.#self = self;
  }

  /** From each heartbeat: the gateway's other nodes and their keys. Anyone not listed is refused. */
  setMembers(
    peers: readonly {
      nodeId: string;
      signPublicKey: string | null;
      sealPublicKey?: string | null | undefined;
    }[],
  ): void {
    const next = new Map<string, Member>();
    for (const p of peers) {
      if (!p.signPublicKey) continue;
      const known = this.#members.get(p.nodeId);
      const sealKey = p.sealPublicKey ?? null;
      if (known && known.keyText === p.signPublicKey) next.set(p.nodeId, { ...known, sealKey });
      else {
        try {
          next.set(p.nodeId, {
            keyText: p.signPublicKey,
            key: parsePublicKey(p.signPublicKey, 'ed25519', 'signPublicKey'),
            sealKey,
          });
        } catch {
          // the service checks keys; a bad one just means that peer cannot call us
        }
      }
    }
    this.#members = next;
  }

  /** A current member's seal key (null if it has none yet). */
  sealKeyOf(nodeId: string): string | null {
    return this.#members.get(nodeId)?.sealKey ?? null;
  }

  get nonceCount(): number {
    return this.#nonces.size;
  }

  /** Checks a request from its headers alone; throws `unauthorized` (or `unavailable`) if refused. */
  verify(method: string, path: string, headers: IncomingHttpHeaders, now: number): PeerCaller {
    const self = this.#self;
    if (!self) throw new FerryError('unavailable', 'this node is not registered yet');
    const gatewayId = header(headers, PEER_HEADER_GATEWAY);
    const nodeId = header(headers, PEER_HEADER_NODE);
    const toNodeId = header(headers, PEER_HEADER_TO);
    const time = Number(header(headers, PEER_HEADER_TIME));
    const nonce = header(headers, PEER_HEADER_NONCE) ?? '';
    const digest = header(headers, PEER_HEADER_BODY_SHA256) ?? '';
    const signature = header(headers, PEER_HEADER_SIGNATURE) ?? '';
    if (!gatewayId || !nodeId || !signature) throw refuse('request is not signed by a node of this gateway');
    if (gatewayId !== self.gatewayId) throw refuse('request is not signed by a node of this gateway');
    if (toNodeId !== self.nodeId) throw refuse('request is signed for another node');
    if (!NONCE_PATTERN.test(nonce) || !SHA256_PATTERN.test(digest))
      throw refuse('request is not signed by a node of this gateway');
    if (!Number.isSafeInteger(time) || Math.abs(now - time) > PEER_CLOCK_SKEW_MS)
      throw refuse(`request time is outside the ${PEER_CLOCK_SKEW_MS / 1000} s window`);
    const member = this.#members.get(nodeId);
    if (!member) throw new FerryError('unauthorized', NOT_A_MEMBER, { reason: 'not_a_member' });
    const signed = { method, path, time, nonce, nodeId, toNodeId, gatewayId, bodySha256: digest };
    if (!verifyPeerRequest(member.key, signed, signature))
      throw refuse('request is not signed by a node of this gateway');
    this.#remember(`${nodeId} ${nonce}`, time + PEER_CLOCK_SKEW_MS, now);
    return { kind: 'peer', nodeId, gatewayId, toNodeId, bodySha256: digest };
  }

  #remember(key: string, forgetAt: number, now: number): void {
    if (this.#nonces.has(key)) throw refuse('request replayed: its nonce was already used');
    if (this.#nonces.size >= this.#maxNonces || now >= this.#nextSweep) {
      for (const [k, at] of this.#nonces) if (at < now) this.#nonces.delete(k);
      this.#nextSweep = now + 1000;
    }
    if (this.#nonces.size >= this.#maxNonces)
      throw new FerryError('unavailable', 'too many peer requests in the replay window; retry shortly');
    this.#nonces.set(key, forgetAt);
  }
}

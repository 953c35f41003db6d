/**
 * Who may set a credential straight on this node (`ferry credential set LS --node URL`, from the
 * on-premises network, the values never passing through the service): a caller with a grant the
 * service signed (protocol/credentials.ts) for this node of this gateway, not expired, and not used before.
 * The service's key is the one the latest heartbeat gave (the same that verifies dispatcher leases);
 * before the first heartbeat nothing is taken. Decided from the headers alone, before the body is read.
 */
import type { IncomingHttpHeaders } from 'node:http';
import { FerryError } from '../common/errors.ts';
import { GRANT_HEADER, GRANT_TTL_MS, verifyGrant, type CredentialGrant } from '../protocol/credentials.ts';
import type { KeyObject } from 'node:crypto';

/** A caller whose grant passed. */
export interface GrantCaller {
  kind: 'grant';
  grant: CredentialGrant;
}

/** Grants remembered at most (each for its lifetime): past it, grants wait their turn. */
const MAX_USED = 10_000;

export class GrantAuth {
  readonly #serviceKey: () => KeyObject | undefined;
  readonly #gatewayId: string;
  readonly #nodeId: string;
  /** nonce -> when it may be forgotten */
  readonly #used = new Map<string, number>();

  /** `serviceKey`: the service's key as the latest heartbeat gave it (none before the first). */
  constructor(serviceKey: () => KeyObject | undefined, self: { gatewayId: string; nodeId: string }) {
    this.#serviceKey = serviceKey;
    this.#gatewayId = self.gatewayId;
    this.#nodeId = self.nodeId;
  }

  verify(headers: IncomingHttpHeaders, now: number): GrantCaller {
    const token = headers[GRANT_HEADER];
    const refuse = (why: string): FerryError =>
      new FerryError('unauthorized', `credential refused: ${why}`, {
        hint: '`ferry credential set LINKED_SERVICE --node URL` asks the service for a grant and sends it',
      });
    if (typeof token !== 'string' || token.length === 0) throw refuse(`no grant (${GRANT_HEADER} header)`);
    const key = this.#serviceKey();
    if (!key)
      throw new FerryError('unavailable', 'this node has not heard from the service yet; retry shortly');
    const grant = verifyGrant(token, key);
    if (!grant) throw refuse('the grant is not signed by the service');
    if (grant.gatewayId !== this.#gatewayId) throw refuse("the grant is for another gateway's credentials");
    if (grant.nodeId !== this.#nodeId) throw refuse('the grant is for another node');
    if (grant.expiresAt <= now || grant.expiresAt > now + GRANT_TTL_MS + 60_000)
      throw refuse('the grant has expired');
    for (const [nonce, until] of this.#used) if (until <= now) this.#used.delete(nonce);
    if (this.#used.has(grant.nonce)) throw refuse('the grant was already used');
    if (this.#used.size >= MAX_USED) throw new FerryError('unavailable', 'too many credential grants in use');
    this.#used.set(grant.nonce, grant.expiresAt);
    return { kind: 'grant', grant };
  }
}

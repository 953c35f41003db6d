import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createPublicKey, generateKeyPairSync, randomBytes } from 'node:crypto';
import { PeerAuth } from './peer-auth.ts';
import { PEER_CLOCK_SKEW_MS, PEER_HEADER_NONCE, peerHeaders } from '../protocol/peer.ts';
import { FerryError, fromProblem, toProblem } from '../common/errors.ts';
import { deriveLeaseKey, leaseVouches, signLease } from '../protocol/dispatcher-lease.ts';

const peer = generateKeyPairSync('ed25519');
const PEER = {
  nodeId: 'node_peer',
  signPublicKey: peer.publicKey.export({ format: 'der', type: 'spki' }).toString('base64'),
};

function auth(max?: number): PeerAuth {
  const a = new PeerAuth(max);
  a.setSelf({ gatewayId: 'gw_1', nodeId: 'node_self' });
  a.setMembers([PEER]);
  return a;
}

function headers(time: number, nonce = randomBytes(16).toString('hex')): Record<string, string> {
  return peerHeaders(peer.privateKey, {
    method: 'GET',
    path: '/v1/ping',
    gatewayId: 'gw_1',
    nodeId: PEER.nodeId,
    toNodeId: 'node_self',
    body: '',
    time,
    nonce,
  });
}

function code(fn: () => unknown): string | undefined {
  try {
    fn();
    return undefined;
  } catch (err) {
    return err instanceof FerryError ? err.code : 'other';
  }
}

test('a nonce is taken once within the window, forgotten after it, and the store is bounded', () => {
  const a = auth(3);
  const t0 = 1_000_000_000;
  const h = headers(t0);
  assert.equal(a.verify('GET', '/v1/ping', h, t0).nodeId, PEER.nodeId);
  assert.equal(
    code(() => a.verify('GET', '/v1/ping', h, t0 + 1000)),
    'unauthorized',
    'replay',
  );
  // Past the window the request is too old anyway, and its nonce may go.
  assert.equal(
    code(() => a.verify('GET', '/v1/ping', h, t0 + PEER_CLOCK_SKEW_MS + 1)),
    'unauthorized',
  );
  // Full: a fourth fresh nonce within the window waits (503, retryable); after the window, room again.
  a.verify('GET', '/v1/ping', headers(t0), t0);
  a.verify('GET', '/v1/ping', headers(t0), t0);
  assert.equal(a.nonceCount, 3);
  assert.equal(
    code(() => a.verify('GET', '/v1/ping', headers(t0 + 10), t0 + 10)),
    'unavailable',
  );
  const later = t0 + PEER_CLOCK_SKEW_MS + 2000;
  a.verify('GET', '/v1/ping', headers(later), later);
  assert.equal(a.nonceCount, 1, 'expired nonces swept');
});

test('a member removed from the heartbeat list is refused; nothing before the first heartbeat', () => {
  const a = auth();
  const now = Date.now();
  a.verify('GET', '/v1/ping', headers(now), now);
  a.setMembers([]);
  assert.equal(
    code(() => a.verify('GET', '/v1/ping', headers(now), now)),
    'unauthorized',
  );
  const fresh = new PeerAuth();
  assert.equal(
    code(() => fresh.verify('GET', '/v1/ping', headers(now), now)),
    'unavailable',
  );
});

/** The refusal verify() throws, as the sender reads it back from the problem body on the wire. */
function refusalOverTheWire(fn: () => unknown): FerryError {
  try {
    fn();
  } catch (err) {
    assert.ok(err instanceof FerryError);
    return fromProblem(JSON.parse(JSON.stringify(toProblem(err))), err.httpStatus);
  }
  assert.fail('the request was taken');
}

test('a sender not (yet) a member is refused with the reason not_a_member, and the reason crosses the wire', () => {
  const now = Date.now();
  const a = auth();
  a.setMembers([]);
  const refused = refusalOverTheWire(() => a.verify('GET', '/v1/ping', headers(now), now));
  assert.equal(refused.code, 'unauthorized');
  assert.equal(refused.reason, 'not_a_member');
  // Other refusals carry no reason: a member's request altered after signing (another nonce) is
  // not "not yet a member".
  const b = auth();
  const forged = { ...headers(now), [PEER_HEADER_NONCE]: randomBytes(16).toString('hex') };
  const bad = refusalOverTheWire(() => b.verify('GET', '/v1/ping', forged, now));
  assert.equal(bad.code, 'unauthorized');
  assert.equal(bad.reason, undefined);
  // A reason this node does not know (from a newer one) is dropped; the code still stands.
  const unknown = fromProblem({ code: 'unauthorized', message: 'x', retryable: false, reason: 'later' }, 401);
  assert.deepEqual([unknown.code, unknown.reason], ['unauthorized', undefined]);
});

test('the lease key is derived from the master key; a token vouches only for its gateway, node and epoch', () => {
  const master = randomBytes(32);
  const k1 = deriveLeaseKey(master);
  assert.equal(deriveLeaseKey(master).publicKeyText, k1.publicKeyText, 'deterministic');
  assert.notEqual(deriveLeaseKey(randomBytes(32)).publicKeyText, k1.publicKeyText);
  const pub = createPublicKey(k1.privateKey);
  const token = signLease(k1.privateKey, { gatewayId: 'g', dispatcherNodeId: 'd', epoch: 7, issuedAt: 1 });
  const expect = { gatewayId: 'g', senderNodeId: 'd', epoch: 7 };
  assert.equal(leaseVouches(token, pub, expect), true);
  assert.equal(leaseVouches(token, pub, { ...expect, epoch: 8 }), false);
  assert.equal(leaseVouches(token, pub, { ...expect, senderNodeId: 'e' }), false);
  assert.equal(leaseVouches(token, pub, { ...expect, gatewayId: 'h' }), false);
  assert.equal(leaseVouches(undefined, pub, expect), false);
  assert.equal(leaseVouches(token, undefined, expect), false);
  const [payload, sig] = token.split('.');
  const other = Buffer.from(
    JSON.stringify({ gatewayId: 'g', dispatcherNodeId: 'd', epoch: 8, issuedAt: 1 }),
  ).toString('base64url');
  assert.equal(leaseVouches(`${other}.${sig}`, pub, { ...expect, epoch: 8 }), false, 'claims changed');
  assert.ok(payload);
});

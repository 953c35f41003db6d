/** The key attempt limiter: a token bucket per address, IPv6 by /64, memory bounded. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { FailureLimiter, addressKey } from './failure-limiter.ts';

test('an address may fail perMinute times, then waits for the refill; others are unaffected', () => {
  const l = new FailureLimiter({ perMinute: 10 });
  for (let i = 0; i < 10; i++) {
    assert.equal(l.blockedFor('10.0.0.1', 1000), 0, `attempt ${i + 1}`);
    l.fail('10.0.0.1', 1000);
  }
  assert.equal(l.blockedFor('10.0.0.1', 1000), 6000, 'one failure back every 6 s');
  assert.equal(l.blockedFor('10.0.0.1', 4000), 3000);
  assert.equal(l.blockedFor('10.0.0.1', 7000), 0);
  assert.equal(l.blockedFor('10.0.0.2', 1000), 0);
  assert.equal(l.blockedFor('::ffff:10.0.0.1', 1000), 6000, 'an IPv4-mapped address is the same address');
});

test('IPv6 addresses count by /64', () => {
  assert.equal(addressKey('2001:db8:1:2:aaaa::1'), '2001:db8:1:2::/64');
  assert.equal(addressKey('2001:0db8:0001:0002:ffff:ffff:ffff:ffff'), '2001:db8:1:2::/64');
  assert.equal(addressKey('2001:db8::1'), '2001:db8:0:0::/64');
  assert.equal(addressKey('::1'), '0:0:0:0::/64');
  const l = new FailureLimiter({ perMinute: 1 });
  l.fail('2001:db8:1:2::1', 0);
  assert.ok(l.blockedFor('2001:db8:1:2::ffff', 0) > 0, 'the same /64');
  assert.equal(l.blockedFor('2001:db8:1:3::1', 0), 0, 'another /64');
});

test('memory is bounded: at most maxAddresses buckets, refilled ones dropped first, then the oldest', () => {
  const l = new FailureLimiter({ perMinute: 2, maxAddresses: 100 });
  for (let i = 0; i < 1000; i++) l.fail(`10.0.${i >> 8}.${i & 255}`, 0);
  assert.equal(l.size, 100);
  assert.ok(l.blockedFor('10.0.3.231', 0) === 0, 'the newest address has one failure of two left');
  l.fail('10.0.3.231', 0);
  assert.ok(l.blockedFor('10.0.3.231', 0) > 0, 'the newest address is remembered');
  // A minute later every bucket has refilled: they make room before anyone recent is forgotten.
  l.fail('192.168.0.1', 60_000);
  l.fail('192.168.0.1', 60_000);
  assert.equal(l.size, 1);
  assert.ok(l.blockedFor('192.168.0.1', 60_000) > 0);
});

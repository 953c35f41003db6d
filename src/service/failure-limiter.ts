/**
 * Failed authentication key attempts, limited per source address: a token bucket per address that
 * holds `perMinute` failures and refills at that rate (so a burst of `perMinute` wrong keys, then one
 * every 60/perMinute s). While an address's bucket is empty, its key attempts are refused with 429
 * and Retry-After before the key is even looked at, so guessing goes no faster than the refill.
 *
 * IPv6 addresses are counted by their /64 (one host usually holds a whole /64). Memory is bounded:
 * at most `maxAddresses` buckets; a bucket that has refilled is the same as none and is dropped, and
 * when every bucket is in use the least recently failed address is forgotten.
 */
import { isIPv6 } from 'node:net';

export interface FailureLimiterOptions {
  /** Failures allowed per address per minute (and the burst). */
  perMinute: number;
  /** Most addresses remembered at once. */
  maxAddresses?: number;
}

interface Bucket {
  tokens: number;
  at: number;
}

const DEFAULT_MAX_ADDRESSES = 10_000;

/** The part of an address that is counted: an IPv4 address, or the /64 of an IPv6 one. */
export function addressKey(address: string | undefined): string {
  if (!address) return '?';
  const v4 = /^::ffff:(\d+\.\d+\.\d+\.\d+)$/i.exec(address);
  if (v4?.[1]) return v4[1];
  if (!isIPv6(address)) return address;
  const [head = '', tail = ''] = address.split('::');
  const left = head ? head.split(':') : [];
  const right = tail ? tail.split(':') : [];
  const groups = address.includes('::')
    ? [...left, ...Array<string>(8 - left.length - right.length).fill('0'), ...right]
    : left;
  return `${groups
    .slice(0, 4)
    .map((g) => g.toLowerCase().replace(/^0+(?=.)/, ''))
    .join(':')}::/64`;
}

export class FailureLimiter {
  readonly #perMinute: number;
  readonly #max: number;
  readonly #buckets = new Map<string, Bucket>();

  constructor(o: FailureLimiterOptions) {
    this.#perMinute = o.perMinute;
    this.#max = o.maxAddresses ?? DEFAULT_MAX_ADDRESSES;
  }

  get size(): number {
    return this.#buckets.size;
  }

  #refilled(b: Bucket, now: number): number {
    return Math.min(this.#perMinute, b.tokens + ((now - b.at) * this.#perMinute) / 60_000);
  }

  /** Milliseconds until `address` may try a key again; 0 when it may now. */
  blockedFor(address: string | undefined, now: number): number {
    const b = this.#buckets.get(addressKey(address));
    if (!b) return 0;
    const tokens = this.#refilled(b, now);
    if (tokens >= 1) return 0;
    return Math.ceil(((1 - tokens) * 60_000) / this.#perMinute);
  }

  /** Counts one failed key attempt from `address`. */
  fail(address: string | undefined, now: number): void {
    const key = addressKey(address);
    const b = this.#buckets.get(key);
    const tokens = b ? this.#refilled(b, now) : this.#perMinute;
    this.#buckets.delete(key); // re-inserted last: the map's order is least recently failed first
    if (this.#buckets.size >= this.#max) this.#evict(now);
    this.#buckets.set(key, { tokens: Math.max(0, tokens - 1), at: now });
  }

  #evict(now: number): void {
    for (const [key, b] of this.#buckets)
      if (this.#refilled(b, now) >= this.#perMinute) this.#buckets.delete(key);
    for (const key of this.#buckets.keys()) {
      if (this.#buckets.size < this.#max) break;
      this.#buckets.delete(key);
    }
  }
}

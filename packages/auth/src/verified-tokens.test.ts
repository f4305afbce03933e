import { describe, expect, it } from 'vitest';
import { createVerifiedTokens } from './verified-tokens.js';

describe('createVerifiedTokens', () => {
  it('keeps an entry until the earlier of its expiry and the TTL', () => {
    let now = 1_000_000;
    const cache = createVerifiedTokens<string>({ ttlMs: 60_000, now: () => now });
    cache.set('a', 'alice', now + 10_000);
    cache.set('b', 'bob', now + 600_000);
    now += 9_999;
    expect([cache.get('a'), cache.get('b')]).toEqual(['alice', 'bob']);
    now += 1;
    expect(cache.get('a')).toBeUndefined();
    now += 50_000;
    expect(cache.get('b')).toBeUndefined();
  });

  it('drops the oldest entry when full, and remembers nothing with ttlMs 0', () => {
    const cache = createVerifiedTokens<number>({ maxEntries: 2 });
    const later = Date.now() + 60_000;
    cache.set('1', 1, later);
    cache.set('2', 2, later);
    cache.set('3', 3, later);
    expect([cache.get('1'), cache.get('2'), cache.get('3')]).toEqual([undefined, 2, 3]);
    const off = createVerifiedTokens<number>({ ttlMs: 0 });
    off.set('1', 1, later);
    expect(off.get('1')).toBeUndefined();
  });
});

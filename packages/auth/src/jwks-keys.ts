import {
  createLocalJWKSet,
  errors,
  type FlattenedJWSInput,
  type JSONWebKeySet,
  type JWSHeaderParameters,
  type LocalJWKSet,
} from 'jose';

/** The issuer's key set could not be fetched, and no key fetched before matches the token. */
export class JwksUnavailableError extends Error {
  override name = 'JwksUnavailableError';
}

/** What became of one fetch of the key set, for the app's log. */
export type JwksRefresh =
  | { readonly ok: true; readonly keys: number; readonly reason: JwksRefreshReason }
  | { readonly ok: false; readonly error: unknown; readonly reason: JwksRefreshReason };
export type JwksRefreshReason = 'start' | 'no_keys' | 'unknown_kid' | 'stale';

export interface JwksKeysOptions {
  readonly url: string | URL;
  /**
   * Least time between two fetches (default 30 s): a flood of tokens with made-up `kid`s costs the
   * issuer one request per period, not one per token.
   */
  readonly cooldownMs?: number;
  /** Keys older than this are fetched again in the background, and used meanwhile (default 10 min). */
  readonly maxAgeMs?: number;
  /** A fetch that takes longer is abandoned (default 3 s): a hung JWKS holds no request for long. */
  readonly timeoutMs?: number;
  readonly fetch?: typeof fetch;
  readonly onRefresh?: (refresh: JwksRefresh) => void;
  readonly now?: () => number;
}

/** A jose key resolver over a remote JWKS that keeps its last good copy. */
export interface JwksKeys {
  (header: JWSHeaderParameters, token: FlattenedJWSInput): ReturnType<LocalJWKSet>;
  /** Fetches the key set now (at start, to warm the cache); resolves whether or not it worked. */
  refresh(reason?: JwksRefreshReason): Promise<void>;
}

/**
 * Resolves a token's key from the issuer's JWKS, cached. jose's own `createRemoteJWKSet` refetches
 * once its cache is older than `cacheMaxAge` and fails the token when that fetch fails, so a JWKS
 * outage longer than the cache age would reject every caller. This one never drops keys it fetched:
 * a failed fetch keeps the previous set, a stale set is refreshed in the background while it goes
 * on answering, and an unknown `kid` (a rotated key) triggers at most one fetch per `cooldownMs`.
 */
export function createJwksKeys(options: JwksKeysOptions): JwksKeys {
  const cooldownMs = options.cooldownMs ?? 30_000;
  const maxAgeMs = options.maxAgeMs ?? 600_000;
  const timeoutMs = options.timeoutMs ?? 3_000;
  // Without any key every request fails, so the first fetch is retried sooner than a rotation check.
  const emptyRetryMs = Math.min(cooldownMs, 1_000);
  const fetchImpl = options.fetch ?? fetch;
  const now = options.now ?? Date.now;
  const url = String(options.url);

  let local: LocalJWKSet | undefined;
  let fetchedAt = Number.NEGATIVE_INFINITY;
  let attemptedAt = Number.NEGATIVE_INFINITY;
  let lastFailed = false;
  let inflight: Promise<void> | undefined;

  async function load(reason: JwksRefreshReason): Promise<void> {
    attemptedAt = now();
    try {
      const res = await fetchImpl(url, {
        headers: { accept: 'application/jwk-set+json, application/json' },
        signal: AbortSignal.timeout(timeoutMs),
      });
      if (!res.ok) throw new JwksUnavailableError(`the JWKS answered HTTP ${res.status}`);
      const set = (await res.json()) as JSONWebKeySet;
      // Throws JWKSInvalid on anything that is not {"keys": [...]}: a broken answer replaces nothing.
      local = createLocalJWKSet(set);
      fetchedAt = now();
      lastFailed = false;
      options.onRefresh?.({ ok: true, keys: set.keys.length, reason });
    } catch (error) {
      lastFailed = true;
      options.onRefresh?.({ ok: false, error, reason });
    }
  }

  // Concurrent callers share one fetch.
  function refresh(reason: JwksRefreshReason = 'start'): Promise<void> {
    inflight ??= load(reason).finally(() => {
      inflight = undefined;
    });
    return inflight;
  }

  const waited = (ms: number) => now() - attemptedAt >= ms;

  const keys = (async (header: JWSHeaderParameters, token: FlattenedJWSInput) => {
    if (local === undefined) {
      if (inflight || waited(emptyRetryMs)) await refresh('no_keys');
      if (local === undefined) throw new JwksUnavailableError('the issuer keys could not be fetched');
    } else if (now() - fetchedAt > maxAgeMs && waited(cooldownMs)) {
      void refresh('stale');
    }
    try {
      return await local(header, token);
    } catch (err) {
      if (!(err instanceof errors.JWKSNoMatchingKey)) throw err;
      if (inflight || waited(cooldownMs)) {
        await refresh('unknown_kid');
        if (!lastFailed) return await local(header, token);
      }
      // The key may be a new one the issuer publishes where we cannot reach it: not the caller's fault.
      if (lastFailed) throw new JwksUnavailableError('no cached key matches and the JWKS is unreachable');
      throw err;
    }
  }) as JwksKeys;
  keys.refresh = refresh;
  return keys;
}

import { getConnInfo } from '@hono/node-server/conninfo';
import { ProblemError } from '@orders/http-problem';
import type { Context, MiddlewareHandler } from 'hono';

export interface RateLimitOptions {
  /** Requests per minute per client; 0 turns the limit off. */
  readonly perMinute: number;
  /** How many may come at once after a quiet spell (the bucket's size); default one minute's worth. */
  readonly burst?: number;
  /** Take the client from X-Forwarded-For (behind trusted proxies), not the socket. */
  readonly trustProxy?: boolean;
  /**
   * With `trustProxy`: how many proxies in front append to X-Forwarded-For; the client is the entry
   * this many from the right (default 1: the right-most).
   */
  readonly trustProxyHops?: number;
  /** Most clients tracked at once; the least recently seen are forgotten first. */
  readonly maxClients?: number;
  readonly now?: () => number;
}

interface Bucket {
  tokens: number;
  at: number;
}

/**
 * A token bucket per client, in this process's memory: `perMinute` requests a minute on average,
 * `burst` at once. Over the limit: 429 with `Retry-After` (seconds until a request would pass) and
 * the problem body. Several API processes each keep their own buckets; put a shared limiter in front
 * (a gateway) when the limit must hold across them.
 */
export function rateLimit(options: RateLimitOptions): MiddlewareHandler {
  const perSecond = options.perMinute / 60;
  const burst = Math.max(1, options.burst ?? options.perMinute);
  const maxClients = options.maxClients ?? 100_000;
  const now = options.now ?? (() => performance.now());
  const buckets = new Map<string, Bucket>();

  const hops = Math.max(1, options.trustProxyHops ?? 1);

  const clientOf = (c: Context): string => {
    if (options.trustProxy) {
      const forwarded = c.req.header('x-forwarded-for');
      if (forwarded) {
        const client = forwardedClient(forwarded, hops);
        if (client) return client;
      }
    }
    try {
      return getConnInfo(c).remote.address ?? 'unknown';
    } catch {
      return 'unknown'; // no socket (an in-process request)
    }
  };

  return async (c, next) => {
    if (options.perMinute <= 0) return next();
    const client = clientOf(c);
    const t = now();
    let bucket = buckets.get(client);
    if (bucket) {
      bucket.tokens = Math.min(burst, bucket.tokens + ((t - bucket.at) / 1000) * perSecond);
      bucket.at = t;
      buckets.delete(client); // re-inserted below: the Map's order is least recently seen first
    } else {
      bucket = { tokens: burst, at: t };
      if (buckets.size >= maxClients) {
        const oldest = buckets.keys().next().value;
        if (oldest !== undefined) buckets.delete(oldest);
      }
    }
    buckets.set(client, bucket);
    if (bucket.tokens < 1) {
      const retryAfter = Math.max(1, Math.ceil((1 - bucket.tokens) / perSecond));
      throw new ProblemError(
        429,
        'rate_limited',
        `too many orders from this client: at most ${options.perMinute} a minute; retry after ${retryAfter} s`,
        undefined,
        { retryAfterSeconds: retryAfter },
      );
    }
    bucket.tokens -= 1;
    return next();
  };
}

/**
 * The client's address in an X-Forwarded-For value that `hops` trusted proxies appended to: the entry
 * `hops` from the right. The client writes the header's start itself, so anything left of that entry
 * is whatever it chose to send, and keying on it would give every forged value a fresh bucket. With
 * fewer entries than hops, the left-most (Express's `trust proxy` hop count and nginx's
 * `real_ip_recursive` agree on this reading). Undefined for an empty entry.
 */
export function forwardedClient(header: string, hops: number): string | undefined {
  const entries = header.split(',');
  return entries[Math.max(0, entries.length - hops)]?.trim() || undefined;
}

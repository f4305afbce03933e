import { getConnInfo } from '@hono/node-server/conninfo';
import type { Context, MiddlewareHandler } from 'hono';
import { ProblemError } from './problem.js';

export interface RateLimitOptions {
  /** Requests per minute per client; 0 turns the limit off. */
  readonly perMinute: number;
  /** How many may come at once after a quiet spell (the bucket's size); default one minute's worth. */
  readonly burst?: number;
  /** Take the client from the first X-Forwarded-For entry (behind a trusted proxy), not the socket. */
  readonly trustProxy?: boolean;
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

  const clientOf = (c: Context): string => {
    if (options.trustProxy) {
      const forwarded = c.req.header('x-forwarded-for')?.split(',')[0]?.trim();
      if (forwarded) return forwarded;
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

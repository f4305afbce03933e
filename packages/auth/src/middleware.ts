import { createHash, timingSafeEqual } from 'node:crypto';
import type { MiddlewareHandler } from 'hono';
import { AuthError } from './errors.js';
import type { JwtVerifier, Principal } from './verifier.js';

/** What the middleware puts on the context: the caller, once a token was verified. */
export type AuthEnv = { Variables: { principal: Principal } };

// RFC 6750 §2.1: b64token after "Bearer" and one or more spaces.
const BEARER = /^Bearer +([A-Za-z0-9\-._~+/]+=*) *$/i;

/** The token of an `Authorization: Bearer` header; 401 when there is none or it is not one. */
export function bearerToken(header: string | undefined): string {
  if (header === undefined || !/^Bearer(?: |$)/i.test(header)) {
    throw new AuthError('missing_token', 'this operation needs an Authorization: Bearer token');
  }
  const match = BEARER.exec(header);
  if (!match?.[1])
    throw new AuthError('invalid_token', 'the Authorization header holds no well-formed bearer token');
  return match[1];
}

/**
 * Guards for an app's routes. With a verifier, `requireScope(s)` lets a request through when its
 * bearer token verifies and grants `s`, and sets `principal`; without one (authentication off) every
 * guard lets everything through, so an app wires its routes the same way in both modes. The scope
 * names are the app's (`orders:read`, `inventory:write`): this package knows none.
 */
export function createAuthGuard(verifier: JwtVerifier | undefined) {
  return {
    /** True when tokens are checked. */
    enabled: verifier !== undefined,
    requireScope(scope: string): MiddlewareHandler<AuthEnv> {
      if (verifier === undefined) return async (_c, next) => next();
      return async (c, next) => {
        // A request passes one guard, but a second on the same route costs no second verification.
        let principal = c.get('principal') as Principal | undefined;
        if (principal === undefined) {
          principal = await verifier.verify(bearerToken(c.req.header('authorization')));
          c.set('principal', principal);
        }
        if (!principal.scopes.has(scope)) {
          throw new AuthError('insufficient_scope', `this operation needs the scope ${scope}`, { scope });
        }
        await next();
      };
    },
  };
}
export type AuthGuard = ReturnType<typeof createAuthGuard>;

/**
 * A fixed bearer token (e.g. `METRICS_TOKEN` for a Prometheus scraper), compared in constant time:
 * both sides are hashed first, so neither the length nor a prefix leaks through timing.
 */
export function requireStaticToken(expected: string): MiddlewareHandler {
  const want = createHash('sha256').update(expected).digest();
  return async (c, next) => {
    const token = bearerToken(c.req.header('authorization'));
    const got = createHash('sha256').update(token).digest();
    if (!timingSafeEqual(got, want))
      throw new AuthError('invalid_token', 'the token is not the one configured');
    await next();
  };
}

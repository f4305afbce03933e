import type { Logger } from '@orders/logger';
import { createJwtVerifier, type JwtVerifier } from './verifier.js';

/** What a service's configuration says about its callers' tokens (AUTH_* variables). */
export interface ServiceAuth {
  readonly jwksUrl: string;
  readonly issuer: string;
  readonly audience: readonly string[];
  readonly clockToleranceSeconds: number;
}

/**
 * The verifier every service of the project starts with: the issuer's keys fetched at once, each
 * fetch logged in one line (a failed one keeps the keys fetched before; it is retried at most every
 * 30 s, so that line is rare). Without `auth`, one warning line says who may call, and undefined.
 */
export function startServiceVerifier(
  auth: ServiceAuth | undefined,
  logger: Logger,
  what: string,
): JwtVerifier | undefined {
  const log = logger.child({ component: 'auth' });
  if (!auth) {
    log.warn(
      `authentication is off (AUTH_JWKS_URL, AUTH_ISSUER, AUTH_AUDIENCE unset): anyone who reaches the port may ${what}`,
    );
    return undefined;
  }
  const verifier = createJwtVerifier({
    jwksUrl: auth.jwksUrl,
    issuer: auth.issuer,
    audience: auth.audience,
    clockToleranceSeconds: auth.clockToleranceSeconds,
    jwks: {
      onRefresh: (r) =>
        r.ok
          ? log.info({ keys: r.keys, reason: r.reason }, 'issuer keys fetched')
          : log.warn(
              { err: r.error, reason: r.reason, jwks_url: auth.jwksUrl },
              'issuer keys could not be fetched; cached keys stay in use',
            ),
    },
  });
  void verifier.warm();
  return verifier;
}

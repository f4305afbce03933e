import { errors, type JWTPayload, jwtVerify } from 'jose';
import { AuthError } from './errors.js';
import { createJwksKeys, type JwksKeysOptions, JwksUnavailableError } from './jwks-keys.js';
import { scopesOf } from './scopes.js';
import { createVerifiedTokens, type VerifiedTokensOptions } from './verified-tokens.js';

/** Asymmetric signatures only: `none` and the HMAC family (a shared secret) are never accepted. */
export const ASYMMETRIC_ALGORITHMS = ['RS256', 'ES256', 'EdDSA'] as const;
export type AsymmetricAlgorithm = (typeof ASYMMETRIC_ALGORITHMS)[number];

/** Who called, from a verified token. */
export interface Principal {
  /** The token's `sub`: what the log line and the events' `actor` header carry. */
  readonly subject: string;
  readonly scopes: ReadonlySet<string>;
}

export interface JwtVerifierOptions {
  readonly jwksUrl: string | URL;
  /** The `iss` a token must carry, exactly. */
  readonly issuer: string;
  /** The `aud` a token must carry (one of them, when several). */
  readonly audience: string | readonly string[];
  /** Seconds of clock skew allowed on `exp`, `nbf` and `iat` (default 5). */
  readonly clockToleranceSeconds?: number;
  /** A subset of {@link ASYMMETRIC_ALGORITHMS}; all three by default. */
  readonly algorithms?: readonly AsymmetricAlgorithm[];
  /** Cache and fetch of the JWKS (cooldown, age, timeout, a log hook). */
  readonly jwks?: Omit<JwksKeysOptions, 'url'>;
  /** Recently verified tokens (10,000 for at most 60 s by default; `ttlMs: 0` turns it off). */
  readonly verified?: VerifiedTokensOptions;
}

/** Verifies bearer JWTs against an issuer's JWKS. */
export interface JwtVerifier {
  /** The caller, or an {@link AuthError}: 401 `invalid_token`, or 503 when the keys cannot be had. */
  verify(token: string): Promise<Principal>;
  /** Fetches the JWKS now, so the first request does not wait for it; never rejects. */
  warm(): Promise<void>;
}

// A subject goes into NATS headers and log lines: no control characters, a sane length.
// NATS trims header values, so no surrounding white space either: the actor is exactly the sub.
const SUBJECT = /^(?!\s)[^\p{Cc}]{1,255}(?<!\s)$/u;

/** Builds a verifier; nothing is fetched until `warm()` or the first token. */
export function createJwtVerifier(options: JwtVerifierOptions): JwtVerifier {
  const keys = createJwksKeys({ ...options.jwks, url: options.jwksUrl });
  const verified = createVerifiedTokens<Principal>(options.verified);
  const toleranceMs = (options.clockToleranceSeconds ?? 5) * 1000;
  const verifyOptions = {
    issuer: options.issuer,
    audience: typeof options.audience === 'string' ? options.audience : [...options.audience],
    algorithms: [...(options.algorithms ?? ASYMMETRIC_ALGORITHMS)],
    clockTolerance: options.clockToleranceSeconds ?? 5,
    // A token without an expiry would be good forever; one without a subject names no one.
    requiredClaims: ['exp', 'sub'],
  };

  return {
    async verify(token) {
      const known = verified.get(token);
      if (known !== undefined) return known;
      let payload: JWTPayload;
      try {
        ({ payload } = await jwtVerify(token, keys, verifyOptions));
      } catch (err) {
        if (err instanceof JwksUnavailableError) {
          throw new AuthError(
            'auth_unavailable',
            'the token cannot be checked now: the issuer keys are unreachable',
            {
              cause: err,
            },
          );
        }
        throw new AuthError('invalid_token', reason(err), { cause: err });
      }
      const subject = payload.sub;
      if (subject === undefined || !SUBJECT.test(subject)) {
        throw new AuthError(
          'invalid_token',
          'the token sub claim is empty, too long or holds control characters',
        );
      }
      const principal: Principal = { subject, scopes: scopesOf(payload) };
      // exp is required above; the entry lasts no longer than jwtVerify would accept the token.
      verified.set(token, principal, (payload.exp ?? 0) * 1000 + toleranceMs);
      return principal;
    },
    warm: () => keys.refresh('start'),
  };
}

/** What the caller is told: the kind of failure, never the token or a claim's value. */
function reason(err: unknown): string {
  if (err instanceof errors.JWTExpired) return 'the token has expired';
  if (err instanceof errors.JWTClaimValidationFailed) {
    switch (err.claim) {
      case 'iss':
        return 'the token comes from another issuer';
      case 'aud':
        return 'the token is meant for another audience';
      case 'nbf':
      case 'iat':
        return 'the token is not valid yet';
      default:
        return `the token ${err.claim} claim is missing or invalid`;
    }
  }
  if (err instanceof errors.JOSEAlgNotAllowed || err instanceof errors.JOSENotSupported) {
    return 'the token algorithm is not accepted (RS256, ES256 or EdDSA only)';
  }
  if (err instanceof errors.JWSSignatureVerificationFailed) return 'the token signature does not verify';
  if (err instanceof errors.JWKSNoMatchingKey || err instanceof errors.JWKSMultipleMatchingKeys) {
    return 'no key of the issuer matches the token';
  }
  return 'the token is malformed';
}

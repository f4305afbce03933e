/**
 * Why a request was not let in, as RFC 6750 names it. `missing_token`: no bearer credential at all
 * (the challenge carries no error code, as §3.1 asks); `invalid_token`: malformed, expired, foreign
 * or badly signed; `insufficient_scope`: a good token without the operation's scope;
 * `auth_unavailable`: the issuer's keys cannot be had right now (the JWKS is down and no cached key
 * matches), which is the server's trouble, not the client's.
 */
export type AuthErrorCode = 'missing_token' | 'invalid_token' | 'insufficient_scope' | 'auth_unavailable';

const STATUS: Readonly<Record<AuthErrorCode, 401 | 403 | 503>> = {
  missing_token: 401,
  invalid_token: 401,
  insufficient_scope: 403,
  auth_unavailable: 503,
};

/**
 * Thrown by the verifier and the middleware; the app's `onError` renders it (as its problem document)
 * with `status`, `challenge` as `WWW-Authenticate` and, on 503, `retryAfterSeconds` as `Retry-After`.
 * The message is safe to show the caller: it never holds the token or a claim value.
 */
export class AuthError extends Error {
  override name = 'AuthError';
  readonly status: 401 | 403 | 503;
  constructor(
    readonly code: AuthErrorCode,
    detail: string,
    options?: ErrorOptions & { readonly scope?: string },
  ) {
    super(detail, options);
    this.status = STATUS[code];
    this.scope = options?.scope;
  }
  /** The scope the operation needs, on `insufficient_scope`. */
  readonly scope: string | undefined;

  /** On 503: when to try again. */
  get retryAfterSeconds(): number | undefined {
    return this.code === 'auth_unavailable' ? 5 : undefined;
  }

  /** The `WWW-Authenticate` value (RFC 6750 §3), or undefined when the answer is not a 401/403. */
  get challenge(): string | undefined {
    switch (this.code) {
      case 'missing_token':
        return 'Bearer';
      case 'invalid_token':
        return `Bearer error="invalid_token", error_description="${quotable(this.message)}"`;
      case 'insufficient_scope':
        return `Bearer error="insufficient_scope", error_description="${quotable(this.message)}", scope="${quotable(this.scope ?? '')}"`;
      default:
        // auth_unavailable: a 503, which carries Retry-After instead.
        return undefined;
    }
  }
}

// RFC 6750 §3: error_description and scope hold %x20-21 / %x23-5B / %x5D-7E: no quote, no backslash.
function quotable(text: string): string {
  return text.replace(/[^\x20\x21\x23-\x5b\x5d-\x7e]/g, '?');
}

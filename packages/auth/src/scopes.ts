import type { JWTPayload } from 'jose';

/**
 * The scopes a token grants: the OAuth `scope` claim (RFC 8693 §4.2, RFC 9068: one string, space
 * separated) and `scp` (an array, as Okta and others issue it, or a space-separated string, as
 * Azure AD does). Both are read, so the same verifier works with either kind of issuer.
 */
export function scopesOf(payload: JWTPayload): ReadonlySet<string> {
  const scopes = new Set<string>();
  const add = (value: unknown) => {
    if (typeof value === 'string') {
      for (const s of value.split(' ')) if (s !== '') scopes.add(s);
    } else if (Array.isArray(value)) {
      for (const s of value) if (typeof s === 'string' && s !== '') scopes.add(s);
    }
  };
  add(payload['scope']);
  add(payload['scp']);
  return scopes;
}

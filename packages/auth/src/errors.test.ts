import { describe, expect, it } from 'vitest';
import { AuthError } from './errors.js';
import { bearerToken } from './middleware.js';

describe('AuthError', () => {
  it('maps each code to its status and RFC 6750 challenge', () => {
    expect(new AuthError('missing_token', 'x').challenge).toBe('Bearer');
    const invalid = new AuthError('invalid_token', 'the token has expired');
    expect([invalid.status, invalid.challenge]).toEqual([
      401,
      'Bearer error="invalid_token", error_description="the token has expired"',
    ]);
    const scope = new AuthError('insufficient_scope', 'needs it', { scope: 'orders:write' });
    expect([scope.status, scope.challenge]).toEqual([
      403,
      'Bearer error="insufficient_scope", error_description="needs it", scope="orders:write"',
    ]);
    const down = new AuthError('auth_unavailable', 'keys unreachable');
    expect([down.status, down.challenge, down.retryAfterSeconds]).toEqual([503, undefined, 5]);
  });

  it('keeps quotes, backslashes and line breaks out of the header', () => {
    expect(new AuthError('invalid_token', 'a "b" \\ c\r\nd').challenge).toBe(
      'Bearer error="invalid_token", error_description="a ?b? ? c??d"',
    );
  });
});

describe('bearerToken', () => {
  it('takes the b64token after Bearer, in any case of the scheme', () => {
    expect(bearerToken('Bearer abc.def-_~+/=')).toBe('abc.def-_~+/=');
    expect(bearerToken('bearer  abc')).toBe('abc');
  });

  it('no header or another scheme: missing_token; a bad credential: invalid_token', () => {
    for (const header of [undefined, '', 'Basic dXNlcjpw', 'Bearerabc']) {
      expect(() => bearerToken(header)).toThrow(expect.objectContaining({ code: 'missing_token' }));
    }
    for (const header of ['Bearer', 'Bearer ', 'Bearer a b', 'Bearer a"b']) {
      expect(() => bearerToken(header)).toThrow(expect.objectContaining({ code: 'invalid_token' }));
    }
  });
});

import { z } from 'zod';

/** Bearer authentication and the /metrics token: shared by every service with an HTTP API. */
export const authShape = {
  AUTH_JWKS_URL: z.url({ protocol: /^https?$/, error: 'must be an http:// or https:// URL' }).optional(),
  AUTH_ISSUER: z.string().min(1).optional(),
  AUTH_AUDIENCE: z.string().min(1).optional(),
  AUTH_CLOCK_TOLERANCE_S: z.coerce.number().int().min(0).max(300).default(5),
  METRICS_TOKEN: z.string().min(16, 'must be at least 16 characters').optional(),
};

export type AuthVariables = { [K in (typeof AUTH_VARIABLES)[number]]?: string | undefined };

/** All three AUTH_* variables or none; an audience list that names none is refused. */
export function checkAuth(v: AuthVariables, ctx: z.RefinementCtx): void {
  if (v.AUTH_AUDIENCE !== undefined && !v.AUTH_AUDIENCE.split(',').some((a) => a.trim() !== '')) {
    ctx.addIssue({ code: 'custom', path: ['AUTH_AUDIENCE'], message: 'names no audience' });
  }
  // Two of the three would leave the service open while the operator believes it closed.
  const set = AUTH_VARIABLES.filter((name) => v[name] !== undefined);
  if (set.length > 0 && set.length < AUTH_VARIABLES.length) {
    for (const name of AUTH_VARIABLES.filter((n) => v[n] === undefined)) {
      ctx.addIssue({
        code: 'custom',
        path: [name],
        message: `is required when ${set.join(' and ')} ${set.length === 1 ? 'is' : 'are'} set (all three or none)`,
      });
    }
  }
}

/** The checked AUTH_* variables as an {@link AuthConfig}, or undefined when authentication is off. */
export function resolveAuth(e: AuthVariables & { AUTH_CLOCK_TOLERANCE_S: number }) {
  if (e.AUTH_JWKS_URL === undefined || e.AUTH_ISSUER === undefined || e.AUTH_AUDIENCE === undefined)
    return undefined;
  return Object.freeze({
    jwksUrl: e.AUTH_JWKS_URL,
    issuer: e.AUTH_ISSUER,
    /** `AUTH_AUDIENCE`, comma separated: a token must name one of them in `aud`. */
    audience: Object.freeze(
      e.AUTH_AUDIENCE.split(',')
        .map((a) => a.trim())
        .filter((a) => a !== ''),
    ),
    clockToleranceSeconds: e.AUTH_CLOCK_TOLERANCE_S,
  });
}

/** The three variables that switch bearer authentication on: all of them, or none. */
export const AUTH_VARIABLES = ['AUTH_JWKS_URL', 'AUTH_ISSUER', 'AUTH_AUDIENCE'] as const;

/** Bearer JWT authentication: whose tokens, for which audience, checked with which keys. */
export type AuthConfig = NonNullable<ReturnType<typeof resolveAuth>>;

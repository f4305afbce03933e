/** The name the OpenAPI document gives the bearer scheme; `securityFor` refers to it. */
export const BEARER_SCHEME = 'bearerAuth';

/**
 * The OpenAPI `securitySchemes` entry for these tokens. OpenAPI 3.1 lets an `http` bearer scheme
 * list scopes per operation (`security: [{ bearerAuth: [scope] }]`), which is what Swagger UI's
 * "Authorize" needs: paste a token, and every operation sends it.
 */
export function bearerSecurityScheme(description: string) {
  return { type: 'http', scheme: 'bearer', bearerFormat: 'JWT', description } as const;
}

/** An operation's `security`: the bearer scheme with the one scope it needs. */
export function securityFor(scope: string): Array<Record<string, string[]>> {
  return [{ [BEARER_SCHEME]: [scope] }];
}

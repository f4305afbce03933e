export { AuthError, type AuthErrorCode } from './errors.js';
export {
  createJwksKeys,
  type JwksKeys,
  type JwksKeysOptions,
  type JwksRefresh,
  type JwksRefreshReason,
  JwksUnavailableError,
} from './jwks-keys.js';
export {
  type AuthEnv,
  type AuthGuard,
  bearerToken,
  createAuthGuard,
  requireStaticToken,
} from './middleware.js';
export { BEARER_SCHEME, bearerSecurityScheme, securityFor } from './openapi.js';
export { scopesOf } from './scopes.js';
export { type ServiceAuth, startServiceVerifier } from './service-verifier.js';
export { createVerifiedTokens, type VerifiedTokensOptions } from './verified-tokens.js';
export {
  ASYMMETRIC_ALGORITHMS,
  type AsymmetricAlgorithm,
  createJwtVerifier,
  type JwtVerifier,
  type JwtVerifierOptions,
  type Principal,
} from './verifier.js';

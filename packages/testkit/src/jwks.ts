import { randomUUID } from 'node:crypto';
import { createServer, type Server } from 'node:http';
import {
  base64url,
  type CryptoKey,
  exportJWK,
  exportSPKI,
  generateKeyPair,
  type JWK,
  type JWTPayload,
  SignJWT,
} from 'jose';
import { startOnReservedPort } from './ports.js';

/** A key pair the test issuer signs with; its public half is what the JWKS serves. */
export interface TestSigningKey {
  readonly kid: string;
  readonly alg: 'RS256' | 'ES256' | 'EdDSA';
  readonly privateKey: CryptoKey;
  readonly publicJwk: JWK;
  /** The public key as PEM (SPKI): what an algorithm-confusion attack uses as an HMAC secret. */
  readonly publicPem: string;
}

/** A fresh key pair with a random `kid`. */
export async function createSigningKey(alg: TestSigningKey['alg'] = 'RS256'): Promise<TestSigningKey> {
  const { privateKey, publicKey } = await generateKeyPair(alg, { extractable: true });
  const kid = randomUUID();
  const publicJwk = { ...(await exportJWK(publicKey)), kid, alg, use: 'sig' };
  return { kid, alg, privateKey, publicJwk, publicPem: await exportSPKI(publicKey) };
}

/** Claims of a test token; `exp` defaults to five minutes from now. */
export interface TestClaims extends JWTPayload {
  readonly iss: string;
  readonly aud: string | string[];
  readonly sub: string;
}

/** A signed JWT; the header carries the key's `kid` and `alg` unless `header` says otherwise. */
export async function mintToken(
  key: TestSigningKey,
  claims: TestClaims,
  header: { kid?: string; typ?: string } = {},
): Promise<string> {
  const now = Math.floor(Date.now() / 1000);
  return new SignJWT({ iat: now, exp: now + 300, ...claims })
    .setProtectedHeader({ alg: key.alg, kid: header.kid ?? key.kid, typ: header.typ ?? 'JWT' })
    .sign(key.privateKey);
}

/** An unsecured JWT (`alg: none`, empty signature): a verifier must refuse it. */
export function unsignedToken(claims: JWTPayload, header: Record<string, unknown> = {}): string {
  const part = (value: unknown) => base64url.encode(JSON.stringify(value));
  return `${part({ alg: 'none', typ: 'JWT', ...header })}.${part(claims)}.`;
}

/**
 * An HS256 token whose HMAC secret is `secret`: with the issuer's public key (PEM or JWK JSON) as the
 * secret, the classic algorithm-confusion attack on verifiers that let the token pick the algorithm.
 */
export async function hmacToken(secret: string, claims: JWTPayload, kid?: string): Promise<string> {
  const now = Math.floor(Date.now() / 1000);
  return new SignJWT({ iat: now, exp: now + 300, ...claims })
    .setProtectedHeader({ alg: 'HS256', typ: 'JWT', ...(kid ? { kid } : {}) })
    .sign(new TextEncoder().encode(secret));
}

/** An issuer's JWKS endpoint for tests, on a port the kit reserved. */
export interface JwksServer {
  /** `http://127.0.0.1:<port>/.well-known/jwks.json` */
  readonly url: string;
  /** Keys served now: change it (push a new key, remove one) to rotate without a restart. */
  readonly keys: TestSigningKey[];
  /** How many times the key set was fetched. */
  fetches(): number;
  /** Stops answering (connections refused) and gives the port back; idempotent. */
  stop(): Promise<void>;
}

/** Starts a JWKS endpoint serving `keys` (one fresh RS256 key when none are given). */
export async function startJwksServer(keys?: TestSigningKey[]): Promise<JwksServer> {
  const served = keys ?? [await createSigningKey()];
  let count = 0;
  return startOnReservedPort(async (reservation) => {
    const server: Server = createServer((req, res) => {
      if (req.url !== '/.well-known/jwks.json') {
        res.writeHead(404).end();
        return;
      }
      count++;
      res
        .writeHead(200, { 'content-type': 'application/jwk-set+json' })
        .end(JSON.stringify({ keys: served.map((k) => k.publicJwk) }));
    });
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(reservation.port, '127.0.0.1', () => {
        server.off('error', reject);
        resolve();
      });
    });
    let stopped: Promise<void> | undefined;
    return {
      url: `http://127.0.0.1:${reservation.port}/.well-known/jwks.json`,
      keys: served,
      fetches: () => count,
      stop() {
        stopped ??= new Promise<void>((resolve) => {
          server.close(() => resolve());
          server.closeAllConnections();
        }).finally(() => reservation.release());
        return stopped;
      },
    };
  });
}

/** A test issuer: a JWKS server, its first key, and tokens for an audience. */
export interface TestIssuer {
  readonly jwks: JwksServer;
  readonly key: TestSigningKey;
  readonly issuer: string;
  readonly audience: string;
  /** A token from this issuer for this audience, with these scopes (the `scope` claim). */
  token(scopes: readonly string[], claims?: Partial<TestClaims>): Promise<string>;
}

/** Starts a JWKS server with one RS256 key, for issuer `https://issuer.test/` and `audience`. */
export async function startTestIssuer(audience = 'orders-api'): Promise<TestIssuer> {
  const key = await createSigningKey('RS256');
  const jwks = await startJwksServer([key]);
  const issuer = 'https://issuer.test/';
  return {
    jwks,
    key,
    issuer,
    audience,
    token: (scopes, claims = {}) =>
      // A jti of its own: two tokens minted in the same second are never the same string.
      mintToken(key, {
        iss: issuer,
        aud: audience,
        sub: 'test-client',
        scope: scopes.join(' '),
        jti: randomUUID(),
        ...claims,
      }),
  };
}

import { createJwtVerifier, type JwtVerifier } from '@orders/auth';
import type { Db } from '@orders/db';
import { silentLogger } from '@orders/logger';
import { createTestDatabase, startTestIssuer, type TestDatabase, type TestIssuer } from '@orders/testkit';
import { type AppDeps, createApp } from '../src/app.js';

export const CUSTOMER = '550e8400-e29b-41d4-a716-446655440000';

/** The seed README's create-order body. */
export const SEED_ORDER = {
  customer_id: CUSTOMER,
  items: [
    { sku: 'WIDGET-001', qty: 2, price: 19.99 },
    { sku: 'GADGET-002', qty: 1, price: 49.99 },
  ],
  metadata: { source: 'web' },
};

export const TEST_LIMITS = { bodyBytes: 64 * 1024, itemsPerOrder: 100, metadataBytes: 4096 };

/** An app on a database of the file's own; with a verifier, authentication is on. */
export async function setupApi(options: { poolSize?: number; verifier?: JwtVerifier } = {}): Promise<{
  tdb: TestDatabase;
  app: ReturnType<typeof createApp>['app'];
  metrics: ReturnType<typeof createApp>['metrics'];
}> {
  const { verifier, ...databaseOptions } = options;
  const tdb = await createTestDatabase(databaseOptions);
  const { app, metrics } = testApp(tdb.db, verifier ? { verifier } : {});
  return { tdb, app, metrics };
}

/** The app on `db` as the tests run it (silent, {@link TEST_LIMITS}, stream `orders`), `deps` and `config` on top. */
export function testApp(
  db: Db,
  deps: Partial<Omit<AppDeps, 'db' | 'config'>> & { readonly config?: Partial<AppDeps['config']> } = {},
): ReturnType<typeof createApp> {
  const { config, ...rest } = deps;
  return createApp({
    db,
    logger: silentLogger(),
    ...rest,
    config: { serviceName: 'orders-test', limits: TEST_LIMITS, stream: 'orders', ...config },
  });
}

/** What the tests call on an app: `app.request`. */
export interface RequestTarget {
  request(path: string, init?: RequestInit): Response | Promise<Response>;
}

/** A verifier of the test issuer's tokens, with the API's defaults unless told otherwise. */
export function testVerifier(
  issuer: TestIssuer,
  jwks: NonNullable<Parameters<typeof createJwtVerifier>[0]['jwks']> = {},
): JwtVerifier {
  return createJwtVerifier({
    jwksUrl: issuer.jwks.url,
    issuer: issuer.issuer,
    audience: issuer.audience,
    jwks,
  });
}

/**
 * An app with authentication on, against a JWKS server of the file's own, whose `request` sends a
 * valid token with both scopes: the suites written before authentication run unchanged through it.
 */
export async function setupAuthenticatedApi(): Promise<{
  tdb: TestDatabase;
  app: RequestTarget;
  issuer: TestIssuer;
  close: () => Promise<void>;
}> {
  const issuer = await startTestIssuer();
  const { tdb, app } = await setupApi({ verifier: testVerifier(issuer) });
  const token = await issuer.token(['orders:read', 'orders:write'], {
    exp: Math.floor(Date.now() / 1000) + 3600,
  });
  return {
    tdb,
    app: withToken(app, token),
    issuer,
    close: async () => {
      await issuer.jwks.stop();
      await tdb.drop();
    },
  };
}

/** `target` with `Authorization: Bearer <token>` on every request. */
export function withToken(target: RequestTarget, token: string): RequestTarget {
  return {
    request(path, init = {}) {
      const headers = new Headers(init.headers);
      headers.set('authorization', `Bearer ${token}`);
      return target.request(path, { ...init, headers });
    },
  };
}

export function postJson(app: RequestTarget, path: string, body: unknown, method = 'POST') {
  return app.request(path, {
    method,
    headers: { 'content-type': 'application/json' },
    body: typeof body === 'string' ? body : JSON.stringify(body),
  });
}

import { randomUUID } from 'node:crypto';
import { setTimeout as sleep } from 'node:timers/promises';
import { createJwtVerifier, type JwtVerifier } from '@orders/auth';
import { createLogger, silentLogger } from '@orders/logger';
import {
  createSigningKey,
  hmacToken,
  mintToken,
  startJwksServer,
  startTestIssuer,
  type TestIssuer,
  unsignedToken,
} from '@orders/testkit';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { createApp } from '../src/app.js';
import {
  postJson,
  type RequestTarget,
  SEED_ORDER,
  setupApi,
  testApp,
  testVerifier,
  withToken,
} from './helpers.js';

// Authentication against a real JWKS endpoint (an HTTP server on a reserved port) with tokens this
// file mints: every refusal is a 401/403 problem document with an RFC 6750 challenge, never a 500.

const READ = 'orders:read';
const WRITE = 'orders:write';
const { tdb, app: openApp } = await setupApi();
let issuer: TestIssuer;
let verifier: JwtVerifier;
let app: ReturnType<typeof createApp>['app'];

beforeAll(async () => {
  issuer = await startTestIssuer();
  verifier = testVerifier(issuer);
  app = appWith(verifier);
});
afterAll(async () => {
  await issuer.jwks.stop();
  await tdb.drop();
});

function appWith(v: JwtVerifier | undefined, extra: { metricsToken?: string; lines?: unknown[] } = {}) {
  const logger = extra.lines
    ? createLogger({
        name: 'auth-test',
        level: 'info',
        destination: { write: (line: string) => void extra.lines?.push(JSON.parse(line)) },
      })
    : silentLogger();
  return testApp(tdb.db, {
    logger,
    ...(v ? { verifier: v } : {}),
    ...(extra.metricsToken ? { metricsToken: extra.metricsToken } : {}),
  }).app;
}

const claims = (over: Record<string, unknown> = {}) => ({
  iss: issuer.issuer,
  aud: issuer.audience,
  sub: 'client-42',
  scope: `${READ} ${WRITE}`,
  // Unique tokens: the verifier remembers verified ones, and a test of the keys must not hit that.
  jti: randomUUID(),
  ...over,
});

/** A 401/403 problem document with its challenge; returns the body. */
async function expectRefused(res: Response, status: 401 | 403 | 503, code: string, challenge?: RegExp) {
  expect(res.status).toBe(status);
  expect(res.headers.get('content-type')).toBe('application/problem+json');
  const body = (await res.json()) as Record<string, unknown>;
  expect(body).toMatchObject({ type: 'about:blank', status, code });
  expect(typeof body['detail']).toBe('string');
  if (challenge) expect(res.headers.get('www-authenticate')).toMatch(challenge);
  return body;
}

const create = (target: RequestTarget, token?: string) =>
  postJson(token === undefined ? target : withToken(target, token), '/orders', SEED_ORDER);

/** Creating an order with `token` is refused 401 invalid_token (challenge included); returns the detail. */
const invalidTokenDetail = async (token: string) =>
  (await expectRefused(await create(app, token), 401, 'invalid_token', /error="invalid_token"/))['detail'];

describe('a request without a good token', () => {
  it('no token: 401 with a bare Bearer challenge, and no order is written', async () => {
    const before = await countOrders();
    await expectRefused(await postJson(app, '/orders', SEED_ORDER), 401, 'missing_token', /^Bearer$/);
    await expectRefused(await app.request('/orders'), 401, 'missing_token', /^Bearer$/);
    // Another scheme is no bearer token either.
    await expectRefused(
      await app.request('/orders', { headers: { authorization: 'Basic dXNlcjpwYXNz' } }),
      401,
      'missing_token',
      /^Bearer$/,
    );
    expect(await countOrders()).toBe(before);
  });

  it('a malformed token or header: 401 invalid_token', async () => {
    const invalid = /^Bearer error="invalid_token", error_description="[^"]+"$/;
    await expectRefused(await create(app, 'not-a-jwt'), 401, 'invalid_token', invalid);
    await expectRefused(
      await app.request('/orders', { headers: { authorization: 'Bearer two tokens' } }),
      401,
      'invalid_token',
      invalid,
    );
  });

  it('a bad signature: 401', async () => {
    // Another key, claiming the issuer's kid.
    const other = await createSigningKey('RS256');
    const token = await mintToken(other, claims(), { kid: issuer.key.kid });
    expect(await invalidTokenDetail(token)).toBe('the token signature does not verify');
  });

  it('expired beyond the clock tolerance: 401; expired within it: accepted', async () => {
    const now = Math.floor(Date.now() / 1000);
    const expired = await mintToken(issuer.key, claims({ iat: now - 600, exp: now - 60 }));
    expect(await invalidTokenDetail(expired)).toBe('the token has expired');
    // AUTH_CLOCK_TOLERANCE_S defaults to 5: a token 2 s past its exp still passes.
    const skewed = await mintToken(issuer.key, claims({ iat: now - 600, exp: now - 2 }));
    expect((await create(app, skewed)).status).toBe(201);
  });

  it('a wrong issuer or a wrong audience: 401', async () => {
    const foreign = await mintToken(issuer.key, claims({ iss: 'https://other-issuer.test/' }));
    expect((await expectRefused(await create(app, foreign), 401, 'invalid_token'))['detail']).toBe(
      'the token comes from another issuer',
    );
    const elsewhere = await mintToken(issuer.key, claims({ aud: 'billing-api' }));
    expect((await expectRefused(await create(app, elsewhere), 401, 'invalid_token'))['detail']).toBe(
      'the token is meant for another audience',
    );
  });

  it('alg none: 401', async () => {
    const token = unsignedToken(claims({ exp: Math.floor(Date.now() / 1000) + 300 }), {
      kid: issuer.key.kid,
    });
    await expectRefused(await create(app, token), 401, 'invalid_token', /error="invalid_token"/);
  });

  it('HS256 signed with the public key (algorithm confusion): 401', async () => {
    for (const secret of [issuer.key.publicPem, JSON.stringify(issuer.key.publicJwk)]) {
      const token = await hmacToken(secret, claims(), issuer.key.kid);
      expect(await invalidTokenDetail(token)).toBe(
        'the token algorithm is not accepted (RS256, ES256 or EdDSA only)',
      );
    }
  });

  it('a token without exp, or with a sub that holds control characters: 401', async () => {
    const forever = await mintToken(issuer.key, { ...claims(), exp: undefined } as never);
    // SignJWT drops undefined claims: the token really has no exp.
    expect(JSON.parse(Buffer.from(forever.split('.')[1] ?? '', 'base64url').toString())).not.toHaveProperty(
      'exp',
    );
    await expectRefused(await create(app, forever), 401, 'invalid_token');
    for (const sub of ['admin\r\nNats-Msg-Id: x', ' padded ', '', 'x'.repeat(256)]) {
      const token = await mintToken(issuer.key, claims({ sub }));
      await expectRefused(await create(app, token), 401, 'invalid_token');
    }
    // Any other subject is taken as it is, Unicode included.
    expect((await create(app, await mintToken(issuer.key, claims({ sub: 'auth0|Zoë 42' })))).status).toBe(
      201,
    );
  });
});

describe('scopes', () => {
  it('a read-only token: GET works, POST, PATCH and cancel are 403 insufficient_scope', async () => {
    const writer = await issuer.token([READ, WRITE]);
    const order = (await (await create(app, writer)).json()) as { id: string };
    const reader = withToken(app, await issuer.token([READ]));
    expect((await reader.request(`/orders/${order.id}`)).status).toBe(200);
    expect((await reader.request('/orders?limit=1')).status).toBe(200);
    const needsWrite = /^Bearer error="insufficient_scope", error_description="[^"]+", scope="orders:write"$/;
    const body = await expectRefused(
      await postJson(reader, '/orders', SEED_ORDER),
      403,
      'insufficient_scope',
      needsWrite,
    );
    expect(body['detail']).toBe('this operation needs the scope orders:write');
    await expectRefused(
      await postJson(reader, `/orders/${order.id}`, { status: 'placed' }, 'PATCH'),
      403,
      'insufficient_scope',
      needsWrite,
    );
    await expectRefused(
      await reader.request(`/orders/${order.id}/cancel`, { method: 'POST' }),
      403,
      'insufficient_scope',
    );
  });

  it('a write-only token cannot read; scp as an array grants the same as scope', async () => {
    const writeOnly = withToken(app, await issuer.token([WRITE]));
    await expectRefused(await writeOnly.request('/orders'), 403, 'insufficient_scope', /scope="orders:read"/);
    const scp = await mintToken(issuer.key, claims({ scope: undefined, scp: [READ, WRITE] }));
    expect((await create(app, scp)).status).toBe(201);
    expect((await withToken(app, scp).request('/orders?limit=1')).status).toBe(200);
    // A scope that merely starts with the name grants nothing.
    const lookalike = await issuer.token(['orders:writer', 'orders:read:all']);
    await expectRefused(await create(app, lookalike), 403, 'insufficient_scope');
  });
});

describe('open endpoints', () => {
  it('/health and /openapi.json need no token; /metrics needs none unless METRICS_TOKEN is set', async () => {
    expect((await app.request('/health')).status).toBe(200);
    expect((await app.request('/openapi.json')).status).toBe(200);
    expect((await app.request('/docs')).status).toBe(200);
    expect((await app.request('/metrics')).status).toBe(200);

    const guarded = appWith(verifier, { metricsToken: 'scrape-token-0123456789' });
    await expectRefused(await guarded.request('/metrics'), 401, 'missing_token', /^Bearer$/);
    await expectRefused(
      await guarded.request('/metrics', { headers: { authorization: 'Bearer scrape-token-0123456780' } }),
      401,
      'invalid_token',
    );
    // A JWT of the issuer is not the metrics token.
    await expectRefused(
      await withToken(guarded, await issuer.token([READ])).request('/metrics'),
      401,
      'invalid_token',
    );
    const ok = await guarded.request('/metrics', {
      headers: { authorization: 'Bearer scrape-token-0123456789' },
    });
    expect(ok.status).toBe(200);
    expect(await ok.text()).toContain('http_request_duration_seconds');
    expect((await guarded.request('/health')).status).toBe(200);
  });
});

describe('who did it', () => {
  it('the sub goes into the request log line and the events as actor, the token nowhere', async () => {
    const lines: Record<string, unknown>[] = [];
    const logged = appWith(verifier, { lines });
    const token = await mintToken(issuer.key, claims({ sub: 'svc-checkout' }));
    const client = withToken(logged, token);
    const order = (await (await postJson(client, '/orders', SEED_ORDER)).json()) as { id: string };
    expect((await postJson(client, `/orders/${order.id}`, { status: 'placed' }, 'PATCH')).status).toBe(200);
    expect((await client.request(`/orders/${order.id}/cancel`, { method: 'POST' })).status).toBe(200);
    await postJson(logged, '/orders', SEED_ORDER); // refused: logged without a sub

    const requests = lines.filter((l) => l['msg'] === 'request');
    expect(requests.map((l) => [l['method'], l['status'], l['sub']])).toEqual([
      ['POST', 201, 'svc-checkout'],
      ['PATCH', 200, 'svc-checkout'],
      ['POST', 200, 'svc-checkout'],
      ['POST', 401, undefined],
    ]);
    expect(JSON.stringify(lines)).not.toContain(token.split('.')[2]);

    const rows = await tdb.db
      .selectFrom('outbox')
      .select(['event_type', 'headers'])
      .where('aggregate_id', '=', order.id)
      .orderBy('seq')
      .execute();
    expect(rows.map((r) => [r.event_type, (r.headers as Record<string, string>)['actor']])).toEqual([
      ['order_created', 'svc-checkout'],
      ['order_status_changed', 'svc-checkout'],
      ['order_status_changed', 'svc-checkout'],
    ]);
    expect(JSON.stringify(rows)).not.toContain(token.split('.')[2]);
  });
});

describe('the issuer keys', () => {
  it('a rotated key (a new kid in the JWKS) is accepted without a restart, with one fetch', async () => {
    const keys = await startJwksServer();
    const rotating = createJwtVerifier({
      jwksUrl: keys.url,
      issuer: issuer.issuer,
      audience: issuer.audience,
      jwks: { cooldownMs: 0 },
    });
    const target = appWith(rotating);
    const [first] = keys.keys;
    if (!first) throw new Error('the JWKS server started without a key');
    try {
      expect((await create(target, await mintToken(first, claims()))).status).toBe(201);
      expect(keys.fetches()).toBe(1);
      const next = await createSigningKey('ES256');
      keys.keys.push(next);
      expect((await create(target, await mintToken(next, claims()))).status).toBe(201);
      expect(keys.fetches()).toBe(2);
      // The old key goes; tokens it signed are refused once the set without it was fetched.
      keys.keys.shift();
      const eddsa = await createSigningKey('EdDSA');
      keys.keys.push(eddsa);
      expect((await create(target, await mintToken(eddsa, claims()))).status).toBe(201);
      await expectRefused(await create(target, await mintToken(first, claims())), 401, 'invalid_token');
    } finally {
      await keys.stop();
    }
  });

  it('tokens with unknown kids refetch the JWKS at most once per cooldown', async () => {
    // Minted first: signing 40 tokens takes long enough on a loaded machine to outlast a cooldown.
    const stranger = await createSigningKey('RS256');
    const mint = () =>
      Promise.all(Array.from({ length: 20 }, () => mintToken(stranger, claims(), { kid: randomUUID() })));
    const [firstFlood, secondFlood] = [await mint(), await mint()];
    const before = issuer.jwks.fetches();
    const strict = appWith(testVerifier(issuer, { cooldownMs: 2000 }));
    const flood = async (tokens: string[]) =>
      Promise.all(tokens.map(async (token) => (await create(strict, token)).status));
    expect((await create(strict, await issuer.token([WRITE]))).status).toBe(201);
    expect(issuer.jwks.fetches() - before).toBe(1);
    // Within the cooldown of the first fetch: no fetch at all.
    expect(await flood(firstFlood)).toEqual(Array(20).fill(401));
    expect(issuer.jwks.fetches() - before).toBe(1);
    // After it: the first unknown kid fetches once, the 19 others share that fetch or wait.
    await sleep(2100);
    expect(await flood(secondFlood)).toEqual(Array(20).fill(401));
    expect(issuer.jwks.fetches() - before).toBe(2);
  });

  it('the JWKS stopped: tokens of cached keys still pass, even past the cache age; others get 503, never 500', async () => {
    const keys = await startJwksServer();
    const [key] = keys.keys;
    if (!key) throw new Error('the JWKS server started without a key');
    // maxAgeMs 0: every request finds the cache stale and tries a refresh, which fails.
    const cached = createJwtVerifier({
      jwksUrl: keys.url,
      issuer: issuer.issuer,
      audience: issuer.audience,
      jwks: { cooldownMs: 0, maxAgeMs: 0, timeoutMs: 500 },
    });
    const target = appWith(cached);
    expect((await create(target, await mintToken(key, claims()))).status).toBe(201);
    await keys.stop();
    for (let i = 0; i < 3; i++)
      expect((await create(target, await mintToken(key, claims()))).status).toBe(201);
    // A key never seen cannot be checked while the JWKS is down: the server's trouble, so 503 with Retry-After.
    const unseen = await createSigningKey('RS256');
    const res = await create(target, await mintToken(unseen, claims()));
    await expectRefused(res, 503, 'auth_unavailable');
    expect(res.headers.get('retry-after')).toBe('5');
    // Forged tokens are still refused as such.
    await expectRefused(
      await create(target, await hmacToken(key.publicPem, claims(), key.kid)),
      401,
      'invalid_token',
    );
  });

  it('a JWKS that never answered: 503 auth_unavailable, not 500', async () => {
    const gone = await startJwksServer();
    const url = gone.url;
    await gone.stop();
    const target = appWith(
      createJwtVerifier({
        jwksUrl: url,
        issuer: issuer.issuer,
        audience: issuer.audience,
        jwks: { timeoutMs: 500 },
      }),
    );
    await expectRefused(await create(target, await issuer.token([WRITE])), 503, 'auth_unavailable');
    // An unsigned token is refused before any key is looked up.
    await expectRefused(await create(target, unsignedToken(claims())), 401, 'invalid_token');
  });
});

describe('verified tokens', () => {
  it('a token seen before is not checked again until its exp or the TTL, whichever is first', async () => {
    const keys = await startJwksServer();
    const [key] = keys.keys;
    if (!key) throw new Error('the JWKS server started without a key');
    const make = (ttlMs: number) =>
      appWith(
        createJwtVerifier({
          jwksUrl: keys.url,
          issuer: issuer.issuer,
          audience: issuer.audience,
          clockToleranceSeconds: 0,
          jwks: { cooldownMs: 0 },
          verified: { ttlMs },
        }),
      );
    const remembering = make(60_000);
    const checking = make(0);
    try {
      const now = Math.floor(Date.now() / 1000);
      const token = await mintToken(key, claims({ exp: now + 4 }));
      for (const target of [remembering, checking]) expect((await create(target, token)).status).toBe(201);
      // The issuer withdraws the key, and both verifiers fetch the set without it (an unknown kid makes
      // them): the remembered token still passes (for at most the TTL), without the cache it is refused.
      keys.keys.splice(0, 1, await createSigningKey('ES256'));
      const stranger = await mintToken(key, claims(), { kid: randomUUID() });
      for (const target of [remembering, checking]) {
        await expectRefused(await create(target, stranger), 401, 'invalid_token');
      }
      expect(keys.fetches()).toBe(4);
      expect((await create(remembering, token)).status).toBe(201);
      await expectRefused(await create(checking, token), 401, 'invalid_token');
      // Never past its exp: then it is checked again in full (and its key is gone).
      await sleep((now + 4) * 1000 - Date.now() + 50);
      await expectRefused(await create(remembering, token), 401, 'invalid_token');
    } finally {
      await keys.stop();
    }
  });
});

describe('authentication off', () => {
  it('everything as before: no token needed, no actor on the events', async () => {
    const res = await postJson(openApp, '/orders', SEED_ORDER);
    expect(res.status).toBe(201);
    const order = (await res.json()) as { id: string };
    expect((await openApp.request(`/orders/${order.id}`)).status).toBe(200);
    expect((await openApp.request(`/orders/${order.id}/cancel`, { method: 'POST' })).status).toBe(200);
    const rows = await tdb.db
      .selectFrom('outbox')
      .select('headers')
      .where('aggregate_id', '=', order.id)
      .execute();
    expect(rows).toHaveLength(2);
    for (const r of rows) expect(r.headers).not.toHaveProperty('actor');
  });
});

describe('the OpenAPI document', () => {
  it('declares the bearer scheme and each operation its scope; /health and /metrics their own', async () => {
    const doc = await (await app.request('/openapi.json')).json();
    expect(doc.components.securitySchemes.bearerAuth).toMatchObject({
      type: 'http',
      scheme: 'bearer',
      bearerFormat: 'JWT',
    });
    const security = (path: string, method: string) => doc.paths[path][method].security;
    expect(security('/orders', 'post')).toEqual([{ bearerAuth: [WRITE] }]);
    expect(security('/orders', 'get')).toEqual([{ bearerAuth: [READ] }]);
    expect(security('/orders/{id}', 'get')).toEqual([{ bearerAuth: [READ] }]);
    expect(security('/orders/{id}', 'patch')).toEqual([{ bearerAuth: [WRITE] }]);
    expect(security('/orders/{id}/cancel', 'post')).toEqual([{ bearerAuth: [WRITE] }]);
    expect(security('/health', 'get')).toEqual([]);
    expect(security('/metrics', 'get')).toEqual([{}, { metricsToken: [] }]);
    expect(doc.servers).toEqual([{ url: '/', description: expect.any(String) }]);
    expect(doc.info.license.name).toBe('Proprietary');
    for (const tag of doc.tags) expect(tag.description).toEqual(expect.any(String));
    // The same document with authentication off: clients generate one client for both.
    expect(await (await openApp.request('/openapi.json')).json()).toEqual(doc);
  });
});

async function countOrders(): Promise<number> {
  const row = await tdb.db
    .selectFrom('orders')
    .select((eb) => eb.fn.countAll<number>().as('n'))
    .executeTakeFirstOrThrow();
  return Number(row.n);
}

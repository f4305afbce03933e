import { setTimeout as sleep } from 'node:timers/promises';
import type { ApiConfig } from '@orders/config';
import { startApiProcess } from '@orders/testkit';
import { afterAll, describe, expect, it } from 'vitest';
import { type RequestTarget, SEED_ORDER, setupApi, testApp } from './helpers.js';

const { tdb, app: unlimited } = await setupApi();
afterAll(() => tdb.drop());

/** POST /orders with `forwardedFor` as the X-Forwarded-For header the API receives (as a proxy left it). */
const post = (target: RequestTarget, forwardedFor?: string) =>
  target.request('/orders', {
    method: 'POST',
    headers: {
      'content-type': 'application/json',
      ...(forwardedFor ? { 'x-forwarded-for': forwardedFor } : {}),
    },
    body: JSON.stringify(SEED_ORDER),
  });

/** The API process on `port`, as something to `post` to. */
const overHttp = (port: number): RequestTarget => ({
  request: (path, init) => fetch(`http://127.0.0.1:${port}${path}`, init),
});

const limitedApp = (rateLimit: NonNullable<ApiConfig['rateLimit']>) =>
  testApp(tdb.db, { config: { rateLimit } }).app;

describe('rate limit on POST /orders', () => {
  it('is off by default', async () => {
    const statuses = await Promise.all(
      Array.from({ length: 30 }, async () => (await post(unlimited)).status),
    );
    expect(statuses.every((s) => s === 201)).toBe(true);
  });

  it('per client: over the burst is 429 with Retry-After and the problem body; other clients and reads are unaffected; tokens come back', async () => {
    const app = limitedApp({ perMinute: 60, burst: 3, trustProxy: true, trustProxyHops: 1 });
    const first = [];
    for (let i = 0; i < 3; i++) first.push((await post(app, '203.0.113.7')).status);
    expect(first).toEqual([201, 201, 201]);
    const limited = await post(app, '203.0.113.7');
    expect(limited.status).toBe(429);
    expect(limited.headers.get('retry-after')).toBe('1');
    expect(limited.headers.get('content-type')).toMatch(/application\/problem\+json/);
    expect(await limited.json()).toMatchObject({
      status: 429,
      code: 'rate_limited',
      title: 'Too Many Requests',
    });
    // Another client has its own bucket; reads are never limited.
    expect((await post(app, '198.51.100.2')).status).toBe(201);
    expect((await app.request('/orders?limit=1')).status).toBe(200);
    // 60 a minute is one a second: after a second, one more passes.
    await sleep(1050);
    expect((await post(app, '203.0.113.7')).status).toBe(201);
    expect((await post(app, '203.0.113.7')).status).toBe(429);
  });

  // A client writes whatever X-Forwarded-For it likes; a proxy only appends the address it saw. So
  // only the right-most entries (one per trusted proxy) name the client; anything left of them is forged.
  it('behind one trusted proxy: forged left-hand entries do not make new clients', async () => {
    const app = limitedApp({ perMinute: 60, burst: 3, trustProxy: true, trustProxyHops: 1 });
    const statuses = [];
    for (let i = 0; i < 6; i++) statuses.push((await post(app, `192.0.2.${i}, 203.0.113.7`)).status);
    expect(statuses).toEqual([201, 201, 201, 429, 429, 429]);
    // A second client behind the same proxy has its own bucket, whatever it forges.
    expect((await post(app, '192.0.2.1, 198.51.100.2')).status).toBe(201);
    expect((await post(app, '198.51.100.2')).status).toBe(201);
    expect((await post(app, '203.0.113.7')).status).toBe(429);
  });

  it('behind two trusted proxies (TRUST_PROXY_HOPS=2): the client is the second entry from the right', async () => {
    const app = limitedApp({ perMinute: 60, burst: 2, trustProxy: true, trustProxyHops: 2 });
    // The outer proxy appended the client, the inner one appended the outer proxy (10.0.0.1).
    const statuses = [];
    for (let i = 0; i < 4; i++)
      statuses.push((await post(app, `192.0.2.${i}, 203.0.113.7, 10.0.0.1`)).status);
    expect(statuses).toEqual([201, 201, 429, 429]);
    // Another client through the same two proxies keeps its own bucket.
    expect((await post(app, '192.0.2.9, 198.51.100.2, 10.0.0.1')).status).toBe(201);
    // Fewer entries than hops (the outer proxy bypassed): the left-most, as Express does.
    expect((await post(app, '198.51.100.3')).status).toBe(201);
  });

  it('in the API process behind two proxies, configured from the environment: 20 forged entries get 5 through', async () => {
    const { proc, port } = await startApiProcess(tdb.url, {
      RATE_LIMIT_ORDERS_PER_MINUTE: '5',
      TRUST_PROXY: 'true',
      TRUST_PROXY_HOPS: '2',
    });
    try {
      const statuses: number[] = [];
      for (let i = 0; i < 20; i++) {
        const res = await post(overHttp(port), `192.0.2.${i}, 203.0.113.7, 10.0.0.1`);
        statuses.push(res.status);
        await res.arrayBuffer();
      }
      expect(statuses.filter((s) => s === 201)).toHaveLength(5);
      expect(statuses.slice(5).every((s) => s === 429)).toBe(true);
    } finally {
      proc.kill('SIGTERM');
      await proc.exited;
    }
  });

  it('in the API process, by socket address, configured from the environment', async () => {
    const { proc, port } = await startApiProcess(tdb.url, { RATE_LIMIT_ORDERS_PER_MINUTE: '5' });
    try {
      const statuses: number[] = [];
      let retryAfter: string | null = null;
      for (let i = 0; i < 7; i++) {
        // A forged X-Forwarded-For changes nothing without TRUST_PROXY.
        const res = await post(overHttp(port), `192.0.2.${i}`);
        statuses.push(res.status);
        if (res.status === 429) retryAfter = res.headers.get('retry-after');
        await res.arrayBuffer();
      }
      expect(statuses).toEqual([201, 201, 201, 201, 201, 429, 429]);
      expect(Number(retryAfter)).toBeGreaterThanOrEqual(1);
      expect(Number(retryAfter)).toBeLessThanOrEqual(12);
    } finally {
      proc.kill('SIGTERM');
      await proc.exited;
    }
  });
});

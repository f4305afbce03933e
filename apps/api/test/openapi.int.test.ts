import { RegExpRouter } from 'hono/router/reg-exp-router';
import { afterAll, describe, expect, it } from 'vitest';
import { setupApi } from './helpers.js';

const { tdb, app } = await setupApi();
afterAll(() => tdb.drop());

type Operation = { operationId?: string; responses: Record<string, { content?: Record<string, unknown> }> };

describe('GET /openapi.json', () => {
  it('lists every route with its error responses', async () => {
    const res = await app.request('/openapi.json');
    expect(res.status).toBe(200);
    const doc = await res.json();
    expect(doc.openapi).toBe('3.1.0');
    const summary: Record<string, Record<string, string[]>> = {};
    for (const [path, ops] of Object.entries(doc.paths as Record<string, Record<string, Operation>>)) {
      for (const [method, op] of Object.entries(ops)) {
        summary[`${method.toUpperCase()} ${path}`] = Object.fromEntries(
          Object.entries(op.responses).map(([status, r]) => [status, Object.keys(r.content ?? {})]),
        ) as unknown as Record<string, string[]>;
      }
    }
    expect(summary).toMatchSnapshot();
  });

  it('documents the Idempotency-Key header of POST /orders, and only once', async () => {
    const doc = await (await app.request('/openapi.json')).json();
    const params = (doc.paths['/orders'].post.parameters ?? []) as { name: string; in: string }[];
    expect(params.filter((p) => p.in === 'header').map((p) => p.name)).toEqual(['Idempotency-Key']);
    expect(Object.keys(doc.paths['/orders'])).toEqual(['post', 'get']);
  });

  it('documents the schemas that validate', async () => {
    const doc = await (await app.request('/openapi.json')).json();
    const create = doc.components.schemas.CreateOrder;
    expect(create.required).toEqual(expect.arrayContaining(['customer_id', 'items']));
    expect(create.properties.items.minItems).toBe(1);
    expect(create.properties.items.maxItems).toBe(100);
    expect(doc.components.schemas.OrderStatus.enum).toEqual([
      'draft',
      'placed',
      'cancelled',
      'shipped',
      'completed',
    ]);
    expect(doc.components.schemas.Problem.required).toEqual(
      expect.arrayContaining(['type', 'title', 'status', 'detail']),
    );
  });
});

describe('GET /docs', () => {
  it('serves Swagger UI with its assets from this service, no CDN', async () => {
    const res = await app.request('/docs');
    expect(res.status).toBe(200);
    const html = await res.text();
    const assets = [...html.matchAll(/(?:src|href)="([^"]+)"/g)].map((m) => m[1] ?? '');
    expect(assets.length).toBeGreaterThanOrEqual(4);
    for (const asset of assets) {
      expect(asset.startsWith('/docs/assets/')).toBe(true);
      const a = await app.request(asset);
      expect(a.status, asset).toBe(200);
      expect((await a.arrayBuffer()).byteLength).toBeGreaterThan(100);
    }
    expect((await app.request('/docs/assets/..%2Fpackage.json')).status).toBe(404);
  });
});

describe('routing', () => {
  it("keeps every route within Hono's RegExpRouter, not its slower TrieRouter fallback", async () => {
    // SmartRouter picks the first router that accepts every route on the first request; one route shape
    // RegExpRouter refuses (a static path beside a parameter at the same place) sends all traffic to TrieRouter.
    await app.request('/health');
    const router = app.router as unknown as { activeRouter: unknown };
    expect(router.activeRouter).toBeInstanceOf(RegExpRouter);
  });
});

import { createDb } from '@orders/db';
import { afterAll, describe, expect, it } from 'vitest';
import { CUSTOMER, postJson, SEED_ORDER, setupApi, TEST_LIMITS, testApp } from './helpers.js';

const { tdb, app } = await setupApi();
afterAll(() => tdb.drop());

const ORDER_ID = '123e4567-e89b-12d3-a456-426614174000';

/** Every error body has one shape, whatever produced it. */
async function expectProblem(res: Response, status: number, code: string) {
  expect(res.status).toBe(status);
  expect(res.headers.get('content-type')).toBe('application/problem+json');
  const body = await res.json();
  expect(body).toMatchObject({ type: 'about:blank', status, code });
  expect(typeof body.title).toBe('string');
  expect(typeof body.detail).toBe('string');
  expect(body.detail.length).toBeGreaterThan(0);
  expect(typeof body.request_id).toBe('string');
  expect(JSON.stringify(body)).not.toMatch(/\bat .+\.(ts|js):\d+/); // no stack trace
  return body;
}

async function countOrders(): Promise<number> {
  const { n } = await tdb.db
    .selectFrom('orders')
    .select((eb) => eb.fn.countAll<string>().as('n'))
    .executeTakeFirstOrThrow();
  return Number(n);
}

describe('POST /orders errors', () => {
  it('400 when the body is not JSON', async () => {
    const body = await expectProblem(
      await postJson(app, '/orders', '{"customer_id": '),
      400,
      'malformed_json',
    );
    expect(body.detail).toMatch(/not valid JSON/);
  });

  it('400 when the body is empty', async () => {
    await expectProblem(await postJson(app, '/orders', ''), 400, 'malformed_json');
  });

  it('413 when the body is larger than the limit', async () => {
    const huge = { ...SEED_ORDER, metadata: { blob: 'x'.repeat(TEST_LIMITS.bodyBytes) } };
    await expectProblem(await postJson(app, '/orders', huge), 413, 'payload_too_large');
  });

  it('413 without a Content-Length (chunked body)', async () => {
    const chunk = new TextEncoder().encode(
      JSON.stringify({ ...SEED_ORDER, metadata: { b: 'y'.repeat(TEST_LIMITS.bodyBytes) } }),
    );
    const stream = new ReadableStream({
      start(controller) {
        controller.enqueue(chunk);
        controller.close();
      },
    });
    const res = await app.request('/orders', {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: stream,
      duplex: 'half',
    } as RequestInit);
    await expectProblem(res, 413, 'payload_too_large');
  });

  it('415 when the content type is not JSON', async () => {
    for (const type of ['text/plain', 'application/x-www-form-urlencoded', 'application/xml']) {
      const res = await app.request('/orders', {
        method: 'POST',
        headers: { 'content-type': type },
        body: JSON.stringify(SEED_ORDER),
      });
      await expectProblem(res, 415, 'unsupported_media_type');
    }
  });

  it('415 when a body comes without a content type', async () => {
    const res = await app.request('/orders', {
      method: 'POST',
      body: new TextEncoder().encode(JSON.stringify(SEED_ORDER)),
    });
    await expectProblem(res, 415, 'unsupported_media_type');
  });

  it('accepts application/json with a charset', async () => {
    const res = await app.request('/orders', {
      method: 'POST',
      headers: { 'content-type': 'application/json; charset=utf-8' },
      body: JSON.stringify(SEED_ORDER),
    });
    expect(res.status).toBe(201);
  });

  const item = SEED_ORDER.items[0];
  const invalid: [string, unknown, string][] = [
    ['body is an array', [SEED_ORDER], '(body)'],
    ['body is a string', '"order"', '(body)'],
    ['customer_id missing', { items: SEED_ORDER.items }, 'customer_id'],
    ['customer_id not a UUID', { ...SEED_ORDER, customer_id: 'customer-1' }, 'customer_id'],
    ['customer_id a number', { ...SEED_ORDER, customer_id: 42 }, 'customer_id'],
    ['items missing', { customer_id: CUSTOMER }, 'items'],
    ['items empty', { ...SEED_ORDER, items: [] }, 'items'],
    ['items not an array', { ...SEED_ORDER, items: { sku: 'A' } }, 'items'],
    [
      'too many items',
      { ...SEED_ORDER, items: Array.from({ length: TEST_LIMITS.itemsPerOrder + 1 }, () => item) },
      'items',
    ],
    ['item is null', { ...SEED_ORDER, items: [null] }, 'items.0'],
    ['sku empty', { ...SEED_ORDER, items: [{ ...item, sku: '' }] }, 'items.0.sku'],
    ['sku too long', { ...SEED_ORDER, items: [{ ...item, sku: 'S'.repeat(65) }] }, 'items.0.sku'],
    ['sku with a NUL', { ...SEED_ORDER, items: [{ ...item, sku: 'A\u0000B' }] }, 'items.0.sku'],
    ['sku not a string', { ...SEED_ORDER, items: [{ ...item, sku: 7 }] }, 'items.0.sku'],
    ['qty zero', { ...SEED_ORDER, items: [{ ...item, qty: 0 }] }, 'items.0.qty'],
    ['qty negative', { ...SEED_ORDER, items: [{ ...item, qty: -2 }] }, 'items.0.qty'],
    ['qty fractional', { ...SEED_ORDER, items: [{ ...item, qty: 1.5 }] }, 'items.0.qty'],
    ['qty a string', { ...SEED_ORDER, items: [{ ...item, qty: '2' }] }, 'items.0.qty'],
    ['qty huge', { ...SEED_ORDER, items: [{ ...item, qty: 1e12 }] }, 'items.0.qty'],
    ['price negative', { ...SEED_ORDER, items: [{ ...item, price: -0.01 }] }, 'items.0.price'],
    ['price with 3 decimals', { ...SEED_ORDER, items: [{ ...item, price: 19.999 }] }, 'items.0.price'],
    ['price a string', { ...SEED_ORDER, items: [{ ...item, price: '19.99' }] }, 'items.0.price'],
    ['price too large', { ...SEED_ORDER, items: [{ ...item, price: 1e13 }] }, 'items.0.price'],
    ['metadata an array', { ...SEED_ORDER, metadata: [1] }, 'metadata'],
    ['metadata a string', { ...SEED_ORDER, metadata: 'web' }, 'metadata'],
    [
      'metadata too big',
      { ...SEED_ORDER, metadata: { s: 'm'.repeat(TEST_LIMITS.metadataBytes) } },
      'metadata',
    ],
    ['metadata with a NUL', { ...SEED_ORDER, metadata: { s: 'a\u0000' } }, 'metadata'],
    [
      'metadata with a lone surrogate',
      '{"customer_id":"550e8400-e29b-41d4-a716-446655440000","items":[{"sku":"A","qty":1,"price":1}],"metadata":{"s":"\\ud800"}}',
      'metadata',
    ],
    [
      'total beyond NUMERIC(14,2)',
      {
        ...SEED_ORDER,
        items: Array.from({ length: 20 }, () => ({ sku: 'BIG', qty: 1_000_000, price: 9_999_999_999.99 })),
      },
      'items',
    ],
  ];

  it.each(invalid)('422 when %s', async (_name, body, field) => {
    const before = await countOrders();
    const problem = await expectProblem(await postJson(app, '/orders', body), 422, 'validation_failed');
    expect(problem.errors.map((e: { field: string }) => e.field)).toContain(field);
    for (const e of problem.errors) expect(typeof e.message).toBe('string');
    expect(await countOrders()).toBe(before);
  });

  it('422 for metadata nested deeper than allowed, without a stack overflow', async () => {
    const deep = `{"customer_id":"${CUSTOMER}","items":[{"sku":"A","qty":1,"price":1}],"metadata":{"a":${'['.repeat(20_000)}${']'.repeat(20_000)}}}`;
    const res = await app.request('/orders', {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: deep,
    });
    await expectProblem(res, 422, 'validation_failed');
  });

  it('ignores unknown fields, like the old service', async () => {
    const res = await postJson(app, '/orders', { ...SEED_ORDER, coupon: 'X' });
    expect(res.status).toBe(201);
  });
});

describe('GET /orders/{id} errors', () => {
  it('404 for an unknown id', async () => {
    const body = await expectProblem(await app.request(`/orders/${ORDER_ID}`), 404, 'not_found');
    expect(body.detail).toContain(ORDER_ID);
  });

  it('422 when the id is not a UUID', async () => {
    for (const id of ['abc', '123', `${ORDER_ID}x`, "1' OR '1'='1"]) {
      const body = await expectProblem(
        await app.request(`/orders/${encodeURIComponent(id)}`),
        422,
        'validation_failed',
      );
      expect(body.errors[0].field).toBe('id');
    }
  });
});

describe('PATCH /orders/{id} errors', () => {
  it('404 for an unknown id', async () => {
    await expectProblem(
      await postJson(app, `/orders/${ORDER_ID}`, { status: 'placed' }, 'PATCH'),
      404,
      'not_found',
    );
  });

  it('422 for an unknown status or a bad body', async () => {
    const created = await (await postJson(app, '/orders', SEED_ORDER)).json();
    for (const body of [{ status: 'lost' }, { status: 3 }, {}, { state: 'placed' }, [], '"placed"']) {
      await expectProblem(
        await postJson(app, `/orders/${created.id}`, body, 'PATCH'),
        422,
        'validation_failed',
      );
    }
    const after = await (await app.request(`/orders/${created.id}`)).json();
    expect(after.status).toBe('draft');
  });

  it('422 when the id is not a UUID', async () => {
    await expectProblem(
      await postJson(app, '/orders/nope', { status: 'placed' }, 'PATCH'),
      422,
      'validation_failed',
    );
  });

  it('400 for a body that is not JSON, 415 for a wrong content type', async () => {
    await expectProblem(
      await postJson(app, `/orders/${ORDER_ID}`, '{status', 'PATCH'),
      400,
      'malformed_json',
    );
    const res = await app.request(`/orders/${ORDER_ID}`, {
      method: 'PATCH',
      headers: { 'content-type': 'text/plain' },
      body: 'placed',
    });
    await expectProblem(res, 415, 'unsupported_media_type');
  });
});

describe('GET /orders errors', () => {
  it.each([
    ['limit=0', 'limit'],
    ['limit=101', 'limit'],
    ['limit=abc', 'limit'],
    ['limit=1.5', 'limit'],
    ['status=lost', 'status'],
    ['customer_id=nope', 'customer_id'],
    ['cursor=not-a-cursor', 'cursor'],
    [`cursor=${Buffer.from('["yesterday","x"]').toString('base64url')}`, 'cursor'],
    // Well-formed but impossible timestamps: a 422, never the database's error as a 500.
    ...['2026-02-30T00:00:00.000000Z', '0000-01-01T00:00:00.000Z', '2026-01-01T24:00:00.000Z'].map(
      (ts): [string, string] => [
        `cursor=${Buffer.from(JSON.stringify([ts, crypto.randomUUID()])).toString('base64url')}`,
        'cursor',
      ],
    ),
  ])('422 for %s', async (query, field) => {
    const body = await expectProblem(await app.request(`/orders?${query}`), 422, 'validation_failed');
    expect(body.errors.map((e: { field: string }) => e.field)).toContain(field);
  });
});

describe('everything else', () => {
  it('404 problem for an unknown route', async () => {
    await expectProblem(await app.request('/nope'), 404, 'not_found');
    await expectProblem(await app.request('/orders', { method: 'DELETE' }), 404, 'not_found');
  });

  it('echoes X-Request-Id, or makes one up', async () => {
    const res = await app.request('/health', { headers: { 'x-request-id': 'trace-abc-123' } });
    expect(res.headers.get('x-request-id')).toBe('trace-abc-123');
    const generated = (await app.request('/health')).headers.get('x-request-id');
    expect(generated).toMatch(/^[0-9a-f-]{36}$/);
    const problem = await (
      await app.request('/orders/nope', { headers: { 'x-request-id': 'req-77' } })
    ).json();
    expect(problem.request_id).toBe('req-77');
  });
});

describe('database outage', () => {
  // Nothing listens on port 1: connections are refused at once, like a stopped database.
  const downDb = createDb({
    url: 'postgres://postgres@127.0.0.1:1/none',
    poolSize: 2,
    connectTimeoutMs: 500,
    statementTimeoutMs: 500,
  });
  const down = testApp(downDb).app;
  afterAll(() => downDb.destroy());

  it('answers 503 with Retry-After, quickly, on every database route', async () => {
    const started = Date.now();
    const res = await postJson(down, '/orders', SEED_ORDER);
    const body = await expectProblem(res, 503, 'database_unavailable');
    expect(res.headers.get('retry-after')).toBe('5');
    expect(body.detail).not.toMatch(/127\.0\.0\.1|ECONNREFUSED|postgres/);
    await expectProblem(await down.request(`/orders/${ORDER_ID}`), 503, 'database_unavailable');
    await expectProblem(await down.request('/orders'), 503, 'database_unavailable');
    await expectProblem(
      await postJson(down, `/orders/${ORDER_ID}`, { status: 'placed' }, 'PATCH'),
      503,
      'database_unavailable',
    );
    expect(Date.now() - started).toBeLessThan(5000);
  });

  it('health says 503', async () => {
    const res = await down.request('/health');
    expect(res.status).toBe(503);
    expect(await res.json()).toEqual({ status: 'unavailable', database: 'unreachable' });
  });

  it('a connect that hangs times out into 503 instead of hanging the request', async () => {
    // A TCP listener that accepts and never speaks: the pool's connect timeout must fire.
    const net = await import('node:net');
    const sockets: import('node:net').Socket[] = [];
    const silent = net.createServer((s) => sockets.push(s));
    await new Promise<void>((r) => silent.listen(0, '127.0.0.1', r));
    const port = (silent.address() as import('node:net').AddressInfo).port;
    const hungDb = createDb({
      url: `postgres://postgres@127.0.0.1:${port}/none`,
      poolSize: 1,
      connectTimeoutMs: 300,
      statementTimeoutMs: 300,
    });
    const hung = testApp(hungDb).app;
    try {
      const started = Date.now();
      await expectProblem(await hung.request(`/orders/${ORDER_ID}`), 503, 'database_unavailable');
      expect(Date.now() - started).toBeLessThan(3000);
    } finally {
      for (const s of sockets) s.destroy();
      silent.close();
      await hungDb.destroy();
    }
  });
});

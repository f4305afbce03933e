import { setTimeout as sleep } from 'node:timers/promises';
import { pruneIdempotencyKeys } from '@orders/db';
import { sql } from 'kysely';
import { afterAll, describe, expect, it } from 'vitest';
import { SEED_ORDER, setupApi, testApp } from './helpers.js';

const { tdb, app } = await setupApi({ poolSize: 16 });
afterAll(() => tdb.drop());
const db = tdb.db;

function post(body: unknown, key?: string, target: { request: typeof app.request } = app) {
  return target.request('/orders', {
    method: 'POST',
    headers: { 'content-type': 'application/json', ...(key === undefined ? {} : { 'idempotency-key': key }) },
    body: typeof body === 'string' ? body : JSON.stringify(body),
  });
}

async function counts(customerId: string) {
  const { rows } = await sql<{ orders: number; events: number }>`
    SELECT (SELECT count(*)::int FROM orders WHERE customer_id = ${customerId}) AS orders,
           (SELECT count(*)::int FROM outbox o JOIN orders r ON r.id::text = o.aggregate_id WHERE r.customer_id = ${customerId}) AS events`.execute(
    db,
  );
  return rows[0];
}

const order = () => ({ ...SEED_ORDER, customer_id: crypto.randomUUID() });

describe('Idempotency-Key on POST /orders', () => {
  it('a retry with the same key and body returns the first response, marked as a replay, and creates nothing', async () => {
    const body = order();
    const key = `"${crypto.randomUUID()}"`;
    const first = await post(body, key);
    expect(first.status).toBe(201);
    expect(first.headers.get('idempotent-replayed')).toBeNull();
    const firstText = await first.text();
    const again = await post(body, key);
    expect(again.status).toBe(201);
    expect(again.headers.get('idempotent-replayed')).toBe('true');
    expect(again.headers.get('location')).toBe(first.headers.get('location'));
    expect(await again.text()).toBe(firstText);
    expect(await counts(body.customer_id)).toEqual({ orders: 1, events: 1 });
  });

  it('the same body re-serialised (key order, whitespace) is the same request', async () => {
    const body = order();
    const key = crypto.randomUUID();
    expect((await post(body, key)).status).toBe(201);
    const reordered = `{ "metadata": ${JSON.stringify(body.metadata)},\n  "items": ${JSON.stringify(
      body.items.map((i) => ({ price: i.price, qty: i.qty, sku: i.sku })),
    )}, "customer_id": "${body.customer_id}" }`;
    const again = await post(reordered, key);
    expect(again.status).toBe(201);
    expect(again.headers.get('idempotent-replayed')).toBe('true');
    expect(await counts(body.customer_id)).toEqual({ orders: 1, events: 1 });
  });

  it('the quoted (Structured Field) and bare forms of a key are the same key', async () => {
    const body = order();
    const key = crypto.randomUUID();
    expect((await post(body, `"${key}"`)).status).toBe(201);
    expect((await post(body, key)).headers.get('idempotent-replayed')).toBe('true');
  });

  it('the same key with a different body is 422 and creates nothing', async () => {
    const body = order();
    const key = crypto.randomUUID();
    expect((await post(body, key)).status).toBe(201);
    const other = await post({ ...body, items: [{ sku: 'OTHER', qty: 1, price: 1 }] }, key);
    expect(other.status).toBe(422);
    expect(await other.json()).toMatchObject({ status: 422, code: 'idempotency_key_reused' });
    expect(await counts(body.customer_id)).toEqual({ orders: 1, events: 1 });
  });

  it('ten concurrent requests with one key create one order; all get its response', async () => {
    const body = order();
    const key = crypto.randomUUID();
    const responses = await Promise.all(Array.from({ length: 10 }, () => post(body, key)));
    expect(responses.map((r) => r.status)).toEqual(Array(10).fill(201));
    const texts = await Promise.all(responses.map((r) => r.text()));
    expect(new Set(texts).size).toBe(1);
    expect(responses.filter((r) => r.headers.get('idempotent-replayed') === 'true')).toHaveLength(9);
    expect(await counts(body.customer_id)).toEqual({ orders: 1, events: 1 });
  });

  it('a request that fails validation does not use up its key', async () => {
    const body = order();
    const key = crypto.randomUUID();
    expect((await post({ ...body, items: [] }, key)).status).toBe(422);
    const res = await post(body, key);
    expect(res.status).toBe(201);
    expect(res.headers.get('idempotent-replayed')).toBeNull();
  });

  it('a malformed key is 400 and creates nothing', async () => {
    const body = order();
    for (const key of ['""', `"${'k'.repeat(256)}"`, 'two words', '"unterminated', 'clé', '"a"b"', 'a,b']) {
      const res = await post(body, key);
      expect(res.status, key).toBe(400);
      expect(await res.json()).toMatchObject({ status: 400, code: 'invalid_idempotency_key' });
    }
    expect(await counts(body.customer_id)).toEqual({ orders: 0, events: 0 });
  });

  it('without a key, every request creates an order', async () => {
    const body = order();
    expect((await post(body)).status).toBe(201);
    expect((await post(body)).status).toBe(201);
    expect(await counts(body.customer_id)).toEqual({ orders: 2, events: 2 });
  });

  it('keys expire after IDEMPOTENCY_TTL: the key can be used again, and expired keys are pruned', async () => {
    const short = testApp(db, { config: { idempotencyTtlMs: 500 } }).app;
    const body = order();
    const key = crypto.randomUUID();
    expect((await post(body, key, short)).status).toBe(201);
    expect((await post(body, key, short)).headers.get('idempotent-replayed')).toBe('true');
    await sleep(700);
    const later = await post({ ...body, items: [{ sku: 'NEW', qty: 1, price: 2 }] }, key, short);
    expect(later.status).toBe(201);
    expect(later.headers.get('idempotent-replayed')).toBeNull();
    expect(await counts(body.customer_id)).toEqual({ orders: 2, events: 2 });

    const stale = crypto.randomUUID();
    expect((await post(order(), stale, short)).status).toBe(201);
    await sleep(700);
    expect(await pruneIdempotencyKeys(db)).toBeGreaterThanOrEqual(2);
    const { rows } = await sql<{
      n: number;
    }>`SELECT count(*)::int AS n FROM idempotency_keys WHERE key IN (${key}, ${stale})`.execute(db);
    expect(rows[0]?.n).toBe(0);
  });

  it('is documented in the OpenAPI document', async () => {
    const doc = await (await app.request('/openapi.json')).json();
    const params = doc.paths['/orders'].post.parameters as { name: string; in: string }[];
    expect(params).toContainEqual(expect.objectContaining({ name: 'Idempotency-Key', in: 'header' }));
    expect(doc.paths['/orders'].post.responses['201'].headers).toHaveProperty('Idempotent-Replayed');
  });
});

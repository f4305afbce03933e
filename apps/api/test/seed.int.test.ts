import { afterAll, describe, expect, it } from 'vitest';
import { postJson, SEED_ORDER, setupApi } from './helpers.js';

// The old service's five tests, ported.
const { tdb, app } = await setupApi();
afterAll(() => tdb.drop());

describe('seed tests', () => {
  it('creates an order: 201, total 89.97, 2 items', async () => {
    const res = await postJson(app, '/orders', SEED_ORDER);
    expect(res.status).toBe(201);
    const order = await res.json();
    expect(order.total_amount).toBe(89.97);
    expect(order.items).toHaveLength(2);
    expect(order.status).toBe('draft');
    expect(res.headers.get('location')).toBe(`/orders/${order.id}`);
  });

  it('gets an order', async () => {
    const created = await (await postJson(app, '/orders', SEED_ORDER)).json();
    const res = await app.request(`/orders/${created.id}`);
    expect(res.status).toBe(200);
    expect(await res.json()).toEqual(created);
  });

  it('404s an unknown order', async () => {
    const res = await app.request('/orders/123e4567-e89b-12d3-a456-426614174000');
    expect(res.status).toBe(404);
    expect(res.headers.get('content-type')).toBe('application/problem+json');
  });

  it('patches the status to placed', async () => {
    const created = await (await postJson(app, '/orders', SEED_ORDER)).json();
    const res = await postJson(app, `/orders/${created.id}`, { status: 'placed' }, 'PATCH');
    expect(res.status).toBe(200);
    const updated = await res.json();
    expect(updated.status).toBe('placed');
    expect(Date.parse(updated.updated_at)).toBeGreaterThanOrEqual(Date.parse(created.updated_at));
  });

  it('rejects empty items with 422', async () => {
    const res = await postJson(app, '/orders', { ...SEED_ORDER, items: [] });
    expect(res.status).toBe(422);
    const body = await res.json();
    expect(body.errors).toContainEqual(expect.objectContaining({ field: 'items' }));
  });
});

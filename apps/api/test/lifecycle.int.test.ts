import { ORDER_STATUSES, ORDER_TRANSITIONS, orderStatusChangedPayloadSchema } from '@orders/events';
import { sql } from 'kysely';
import { afterAll, describe, expect, it } from 'vitest';
import { postJson, SEED_ORDER, setupApi } from './helpers.js';

const { tdb, app } = await setupApi({ poolSize: 16 });
afterAll(() => tdb.drop());
const db = tdb.db;

async function create(): Promise<{ id: string; updated_at: string }> {
  const res = await postJson(app, '/orders', SEED_ORDER);
  expect(res.status).toBe(201);
  return res.json();
}

const patch = (id: string, status: string) => postJson(app, `/orders/${id}`, { status }, 'PATCH');

async function events(orderId: string) {
  const { rows } = await sql<{
    event_type: string;
    subject: string;
    payload: Record<string, unknown>;
    seq: string;
  }>`
    SELECT event_type, subject, payload, seq FROM outbox WHERE aggregate_id = ${orderId} ORDER BY seq`.execute(
    db,
  );
  return rows;
}

/** Moves a fresh order to `status` along the shortest allowed path. */
async function orderIn(status: string): Promise<string> {
  const { id } = await create();
  const path: Record<string, string[]> = {
    draft: [],
    placed: ['placed'],
    cancelled: ['cancelled'],
    shipped: ['placed', 'shipped'],
    completed: ['placed', 'shipped', 'completed'],
  };
  for (const step of path[status] ?? []) expect((await patch(id, step)).status).toBe(200);
  return id;
}

describe('order lifecycle', () => {
  it.each(
    ORDER_STATUSES.flatMap((from) =>
      ORDER_STATUSES.filter((to) => to !== from).map((to) => [from, to] as const),
    ),
  )('%s -> %s is allowed exactly when the lifecycle says so', async (from, to) => {
    const id = await orderIn(from);
    const before = (await events(id)).length;
    const res = await patch(id, to);
    const allowed = ORDER_TRANSITIONS[from].includes(to);
    if (allowed) {
      expect(res.status).toBe(200);
      expect((await res.json()).status).toBe(to);
      const after = await events(id);
      expect(after).toHaveLength(before + 1);
      const event = after.at(-1);
      expect(event?.event_type).toBe('order_status_changed');
      expect(event?.subject).toBe('orders.order_status_changed');
      const payload = orderStatusChangedPayloadSchema.parse(event?.payload);
      expect(payload).toMatchObject({ order_id: id, from, to });
    } else {
      expect(res.status).toBe(409);
      expect(res.headers.get('content-type')).toMatch(/application\/problem\+json/);
      const body = await res.json();
      expect(body).toMatchObject({
        status: 409,
        code: 'invalid_transition',
        current_status: from,
        allowed_next: [...ORDER_TRANSITIONS[from]],
      });
      expect(body.detail).toContain(from);
      expect((await events(id)).length).toBe(before);
      expect((await (await app.request(`/orders/${id}`)).json()).status).toBe(from);
    }
  });

  it('setting the current status again is a no-op 200: nothing written, no event, updated_at kept', async () => {
    const id = await orderIn('placed');
    const before = await (await app.request(`/orders/${id}`)).json();
    const res = await patch(id, 'placed');
    expect(res.status).toBe(200);
    const body = await res.json();
    expect(body.status).toBe('placed');
    expect(body.updated_at).toBe(before.updated_at);
    expect((await events(id)).map((e) => e.event_type)).toEqual(['order_created', 'order_status_changed']);
  });

  it('the event carries from, to and changed_at equal to the order updated_at', async () => {
    const { id } = await create();
    const res = await patch(id, 'placed');
    const order = await res.json();
    const [, changed] = await events(id);
    expect(changed?.payload).toEqual({
      event_type: 'order_status_changed',
      order_id: id,
      from: 'draft',
      to: 'placed',
      changed_at: order.updated_at,
    });
  });

  it('POST /orders/{id}/cancel cancels, and refuses once shipped', async () => {
    const draft = await orderIn('draft');
    const res = await app.request(`/orders/${draft}/cancel`, { method: 'POST' });
    expect(res.status).toBe(200);
    expect((await res.json()).status).toBe('cancelled');
    const again = await app.request(`/orders/${draft}/cancel`, { method: 'POST' });
    expect(again.status).toBe(200);
    expect((await events(draft)).length).toBe(2);
    const shipped = await orderIn('shipped');
    const refused = await app.request(`/orders/${shipped}/cancel`, { method: 'POST' });
    expect(refused.status).toBe(409);
    expect(await refused.json()).toMatchObject({ current_status: 'shipped', allowed_next: ['completed'] });
    expect((await app.request(`/orders/${crypto.randomUUID()}/cancel`, { method: 'POST' })).status).toBe(404);
  });

  it('racing changes never both win from the same status: one event per real change, a consistent chain', async () => {
    for (let round = 0; round < 20; round++) {
      const { id } = await create();
      // Two clients at once from draft: one places, one cancels. Either order is fine; both starting
      // from draft is not.
      const [a, b] = await Promise.all([patch(id, 'placed'), patch(id, 'cancelled')]);
      expect([a.status, b.status].every((s) => s === 200 || s === 409)).toBe(true);
      const changes = (await events(id))
        .filter((e) => e.event_type === 'order_status_changed')
        .map((e) => e.payload as { from: string; to: string });
      // A chain: each change starts where the previous one ended, the first from draft.
      let status = 'draft';
      for (const change of changes) {
        expect(change.from).toBe(status);
        status = change.to;
      }
      const final = (await (await app.request(`/orders/${id}`)).json()).status;
      expect(final).toBe(status);
      expect(changes.length).toBeGreaterThanOrEqual(1);
      expect(changes.filter((c) => c.from === 'draft')).toHaveLength(1);
    }
  });

  it('ten clients racing to place one order write one event', async () => {
    const { id } = await create();
    const results = await Promise.all(Array.from({ length: 10 }, () => patch(id, 'placed')));
    expect(results.map((r) => r.status)).toEqual(Array(10).fill(200));
    expect((await events(id)).filter((e) => e.event_type === 'order_status_changed')).toHaveLength(1);
  });
});

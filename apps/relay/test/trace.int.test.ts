import { createTestDatabase, startNatsServer } from '@orders/testkit';
import { afterAll, describe, expect, it } from 'vitest';
import { natsClient, readStream, startApi, startRelay, streamCount, waitFor } from './helpers.js';

// W3C trace context from the HTTP request to the NATS message, through the outbox, with real processes.

const tdb = await createTestDatabase();
const nats = await startNatsServer();
const nc = await natsClient(nats);
const api = await startApi(tdb.url);
const relay = await startRelay(tdb.url, nats);
afterAll(async () => {
  relay.kill('SIGTERM');
  await Promise.all([relay.exited, api.stop()]);
  await nc.close();
  await nats.dispose();
  await tdb.drop();
});

const TRACEPARENT = '00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01';
const TRACESTATE = 'congo=t61rcWkgMzE,rojo=00f067aa0ba902b7';

async function post(path: string, body: unknown, headers: Record<string, string>, method = 'POST') {
  const res = await fetch(`${api.base}${path}`, {
    method,
    headers: { 'content-type': 'application/json', ...headers },
    body: JSON.stringify(body),
  });
  expect(res.status).toBeLessThan(300);
  return (await res.json()) as { id: string };
}

const order = { customer_id: crypto.randomUUID(), items: [{ sku: 'WIDGET-001', qty: 1, price: 1.5 }] };

describe('trace propagation', () => {
  it('the request traceparent and tracestate arrive unchanged as NATS headers, on created and status events', async () => {
    const created = await post('/orders', order, { traceparent: TRACEPARENT, tracestate: TRACESTATE });
    const other = '00-1af7651916cd43dd8448eb211c80319c-c7ad6b7169203331-00';
    await post(`/orders/${created.id}`, { status: 'placed' }, { traceparent: other }, 'PATCH');
    // No traceparent: the API starts one (not sampled), so the event still carries a trace id.
    const plain = await post('/orders', order, {});
    // An invalid one is ignored (the spec's rule), never an error: a fresh one replaces it.
    const invalid = await post('/orders', order, { traceparent: 'not-a-traceparent' });
    await waitFor('4 messages', async () => (await streamCount(nc, 'orders')) >= 4);
    // Different orders' events may interleave in the stream: find each by what it is.
    const messages = await readStream(nc, 'orders');
    const find = (orderId: string, subject: string) =>
      messages.find(
        (m) => m.subject === subject && (JSON.parse(m.data) as { order_id: string }).order_id === orderId,
      );
    const first = find(created.id, 'orders.order_created');
    const second = find(created.id, 'orders.order_status_changed');
    const third = find(plain.id, 'orders.order_created');
    const fourth = find(invalid.id, 'orders.order_created');
    expect(first?.headers['traceparent']).toBe(TRACEPARENT);
    expect(first?.headers['tracestate']).toBe(TRACESTATE);
    expect(second?.headers['traceparent']).toBe(other);
    expect(second?.headers['tracestate']).toBeUndefined();
    for (const started of [third, fourth]) {
      expect(started?.headers['traceparent']).toMatch(/^00-[0-9a-f]{32}-[0-9a-f]{16}-00$/);
    }
    expect(third?.headers['traceparent']).not.toBe(fourth?.headers['traceparent']);
    // Nats-Msg-Id is still the event id next to the trace headers.
    expect(first?.msgId).toMatch(/^[0-9a-f-]{36}$/);
  });
});

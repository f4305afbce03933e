import { createLogger } from '@orders/logger';
import {
  createTestDatabase,
  type NatsServer,
  startNatsServer,
  type TestDatabase,
  type TestDatabaseOf,
} from '@orders/testkit';
import { sql } from 'kysely';
import type { NatsConnection } from 'nats';
import { Registry } from 'prom-client';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { natsClient, readStream, startApi, startRelay, waitFor } from '../../relay/test/helpers.js';
import { createInventoryApp } from '../src/app.js';
import type { InventoryDatabase } from '../src/schema.js';
import { createInventoryDatabase, type InventoryProcess, putStock, startInventory } from './helpers.js';

// The inventory end to end: orders through the real API, its relay into stream `orders`, the
// inventory process consuming them, its own relay (the same code, pointed at the inventory database)
// publishing its events to stream `inventory`. And its HTTP API in-process, through app.request().

let inventoryDb: TestDatabaseOf<InventoryDatabase>;
let ordersDb: TestDatabase;
let nats: NatsServer;
let nc: NatsConnection;
const stops: (() => Promise<unknown>)[] = [];

beforeAll(async () => {
  [inventoryDb, ordersDb, nats] = await Promise.all([
    createInventoryDatabase(),
    createTestDatabase(),
    startNatsServer(),
  ]);
  nc = await natsClient(nats);
});
afterAll(async () => {
  for (const stop of stops.reverse()) await stop().catch(() => {});
  await nc?.close();
  await nats?.dispose();
  await inventoryDb?.drop();
  await ordersDb?.drop();
});

describe('inventory HTTP API', () => {
  const app = () =>
    createInventoryApp({
      db: inventoryDb.db,
      logger: createLogger({ name: 'inventory-test', level: 'silent' }),
      registry: new Registry(),
    });
  const put = (sku: string, body: unknown, contentType = 'application/json') =>
    app().request(`/inventory/${encodeURIComponent(sku)}`, {
      method: 'PUT',
      headers: { 'content-type': contentType },
      body: typeof body === 'string' ? body : JSON.stringify(body),
    });

  it('PUT creates (201) then sets (200) the quantity on hand; GET reads it; unknown skus are 404 problems', async () => {
    const created = await put('HTTP-1', { qty_on_hand: 7 });
    expect(created.status).toBe(201);
    expect(await created.json()).toEqual({ sku: 'HTTP-1', qty_on_hand: 7, reserved_qty: 0 });
    const updated = await put('HTTP-1', { qty_on_hand: 3 });
    expect(updated.status).toBe(200);
    expect(await updated.json()).toEqual({ sku: 'HTTP-1', qty_on_hand: 3, reserved_qty: 0 });
    const read = await app().request('/inventory/HTTP-1');
    expect(await read.json()).toEqual({ sku: 'HTTP-1', qty_on_hand: 3, reserved_qty: 0 });
    const missing = await app().request('/inventory/NOPE-404');
    expect(missing.status).toBe(404);
    expect(missing.headers.get('content-type')).toMatch(/^application\/problem\+json/);
    expect(await missing.json()).toMatchObject({ status: 404, code: 'not_found', title: 'Not Found' });
  });

  it('rejects bad bodies and skus with the API’s problem documents', async () => {
    const negative = await put('HTTP-2', { qty_on_hand: -1 });
    expect(negative.status).toBe(422);
    expect(await negative.json()).toMatchObject({
      code: 'validation_failed',
      errors: [{ field: 'qty_on_hand', pointer: '/qty_on_hand' }],
    });
    expect((await put('HTTP-2', { qty_on_hand: 1.5 })).status).toBe(422);
    expect((await put('HTTP-2', { qty_on_hand: 1, extra: true })).status).toBe(422);
    expect((await put('HTTP-2', {})).status).toBe(422);
    expect((await put('x'.repeat(65), { qty_on_hand: 1 })).status).toBe(422);
    expect(await (await put('HTTP-2', '{nope')).json()).toMatchObject({
      status: 400,
      code: 'malformed_json',
    });
    expect((await put('HTTP-2', 'qty=1', 'text/plain')).status).toBe(415);
    expect((await app().request('/inventory/HTTP-2')).status).toBe(404);
  });
});

describe('inventory service', () => {
  it('reserves all or nothing per order, releases a cancelled order once, and its relay publishes the outcomes', async () => {
    // The orders stream first, by the orders relay; then the inventory's durable on it.
    const api = await startApi(ordersDb.url);
    stops.push(() => api.stop());
    const ordersRelay = await startRelay(ordersDb.url, nats);
    stops.push(async () => {
      ordersRelay.kill('SIGTERM');
      await ordersRelay.exited;
    });
    const inventoryRelay = await startRelay(inventoryDb.url, nats, { NATS_STREAM: 'inventory' });
    stops.push(async () => {
      inventoryRelay.kill('SIGTERM');
      await inventoryRelay.exited;
    });

    const inventory: InventoryProcess = await startInventory(inventoryDb.url, nats.url);
    stops.push(async () => {
      if (inventory.alive()) inventory.kill('SIGKILL');
      await inventory.exited;
    });
    expect((await putStock(inventory.base, 'WIDGET-001', 5)).status).toBe(201);
    expect((await putStock(inventory.base, 'GADGET-002', 1)).status).toBe(201);
    const order = (items: { sku: string; qty: number }[]) =>
      api.createOrder({ customer_id: crypto.randomUUID(), items: items.map((i) => ({ ...i, price: 1 })) });

    const fits = await order([
      { sku: 'WIDGET-001', qty: 2 },
      { sku: 'GADGET-002', qty: 1 },
      { sku: 'WIDGET-001', qty: 1 },
    ]);
    const short = await order([
      { sku: 'WIDGET-001', qty: 1 },
      { sku: 'GADGET-002', qty: 1 },
    ]);
    const unknown = await order([{ sku: 'NOT-STOCKED', qty: 1 }]);
    const stock = async (sku: string) => (await fetch(`${inventory.base}/inventory/${sku}`)).json();
    await waitFor(
      'three orders handled',
      async () => (await inventory.metric('consumer_handled_total')) === 3,
    );
    expect(await stock('WIDGET-001')).toEqual({ sku: 'WIDGET-001', qty_on_hand: 5, reserved_qty: 3 });
    // The second order fitted in WIDGET but not in GADGET: nothing of it is reserved.
    expect(await stock('GADGET-002')).toEqual({ sku: 'GADGET-002', qty_on_hand: 1, reserved_qty: 1 });

    const cancel = await fetch(`${api.base}/orders/${fits.body.id}/cancel`, { method: 'POST' });
    expect(cancel.status).toBe(200);
    // A second cancel is no change (no event); a cancel of the failed order releases nothing.
    await fetch(`${api.base}/orders/${fits.body.id}/cancel`, { method: 'POST' });
    await fetch(`${api.base}/orders/${short.body.id}/cancel`, { method: 'POST' });
    await waitFor(
      'both cancels handled',
      async () => (await inventory.metric('consumer_handled_total')) === 5,
    );
    expect(await stock('WIDGET-001')).toMatchObject({ reserved_qty: 0 });
    expect(await stock('GADGET-002')).toMatchObject({ reserved_qty: 0 });

    // The outcomes, through the inventory's outbox and relay, on stream `inventory`.
    await waitFor(
      'four inventory events',
      async () => (await readStream(nc, 'inventory')).length === 4,
      15_000,
    );
    const events = (await readStream(nc, 'inventory')).map((m) => ({
      subject: m.subject,
      ...JSON.parse(m.data),
    }));
    // The relay keeps each order's events in order (one partition per order); across orders it does not.
    const of = (id: string) => events.filter((e) => e.order_id === id);
    expect(of(fits.body.id).map((e) => e.subject)).toEqual([
      'inventory.stock_reserved',
      'inventory.stock_released',
    ]);
    const [reserved, released] = of(fits.body.id);
    expect(reserved.items).toEqual([
      { sku: 'GADGET-002', qty: 1 },
      { sku: 'WIDGET-001', qty: 3 },
    ]);
    expect(released.items).toEqual(reserved.items);
    expect(of(short.body.id)).toEqual([
      expect.objectContaining({
        subject: 'inventory.reservation_failed',
        reason: 'insufficient_stock',
        items: [
          { sku: 'GADGET-002', qty: 1, available: 0, reason: 'insufficient_stock' },
          { sku: 'WIDGET-001', qty: 1 },
        ],
      }),
    ]);
    expect(of(unknown.body.id)).toEqual([
      expect.objectContaining({
        subject: 'inventory.reservation_failed',
        reason: 'unknown_sku',
        items: [{ sku: 'NOT-STOCKED', qty: 1, available: 0, reason: 'unknown_sku' }],
      }),
    ]);

    const ready = await fetch(`${inventory.base}/ready`);
    expect(await ready.json()).toEqual({ status: 'ready', database: 'ok', consumer: 'ok' });
    expect(await inventory.metric('consumer_lag_messages')).toBe(0);

    // SIGTERM: stops promptly and cleanly, nothing left unacknowledged.
    inventory.kill('SIGTERM');
    expect(await inventory.exited).toEqual({ code: 0, signal: null });
    const info = await (await nc.jetstreamManager()).consumers.info('orders', 'inventory');
    expect(info.num_ack_pending).toBe(0);
    const { rows } = await sql<{ n: string }>`SELECT count(*) AS n FROM consumer_inbox`.execute(
      inventoryDb.db,
    );
    expect(Number(rows[0]?.n)).toBe(5);
  });

  it('prunes inbox rows past INBOX_RETENTION and counts them in consumer_inbox_pruned_total', async () => {
    // The service consumes stream `orders` (made by the orders relay in the test above, if it ran).
    const jsm = await nc.jetstreamManager();
    await jsm.streams.info('orders').catch(() => jsm.streams.add({ name: 'orders', subjects: ['orders.>'] }));
    await sql`
      INSERT INTO consumer_inbox (consumer, event_id, subject, stream_seq, processed_at)
      SELECT 'inventory', 'old-' || n, 'orders.order_created', 1000 + n, now() - interval '2 days'
      FROM generate_series(1, 3) AS n`.execute(inventoryDb.db);
    const inventory = await startInventory(inventoryDb.url, nats.url, {
      INBOX_RETENTION: '1d',
      INBOX_PRUNE_INTERVAL_MS: '1000',
    });
    try {
      await waitFor(
        'three inbox rows pruned',
        async () => (await inventory.metric('consumer_inbox_pruned_total')) === 3,
      );
      const { rows } = await sql<{ n: string }>`
        SELECT count(*) AS n FROM consumer_inbox WHERE event_id LIKE 'old-%'`.execute(inventoryDb.db);
      expect(Number(rows[0]?.n)).toBe(0);
    } finally {
      inventory.kill('SIGTERM');
      await inventory.exited;
    }
  });
});

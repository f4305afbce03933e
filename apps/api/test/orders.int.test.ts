import type { AddressInfo } from 'node:net';
import { setTimeout as sleep } from 'node:timers/promises';
import { serve } from '@hono/node-server';
import { contractEvent } from '@orders/testkit';
import { sql } from 'kysely';
import { afterAll, describe, expect, it } from 'vitest';
import { CUSTOMER, postJson, SEED_ORDER, setupApi } from './helpers.js';

const { tdb, app } = await setupApi({ poolSize: 16 });
afterAll(() => tdb.drop());
const db = tdb.db;

async function create(body: unknown = SEED_ORDER) {
  const res = await postJson(app, '/orders', body);
  expect(res.status).toBe(201);
  return res.json();
}

describe('money is exact', () => {
  it('3 x 0.10 + 0.20 = 0.5', async () => {
    const order = await create({
      customer_id: CUSTOMER,
      items: [
        { sku: 'A', qty: 3, price: 0.1 },
        { sku: 'B', qty: 1, price: 0.2 },
      ],
    });
    expect(order.total_amount).toBe(0.5);
    const row = await db
      .selectFrom('orders')
      .select('total_amount')
      .where('id', '=', order.id)
      .executeTakeFirstOrThrow();
    expect(row.total_amount).toBe('0.50');
  });

  it('3 x 19.99 = 59.97', async () => {
    const order = await create({ customer_id: CUSTOMER, items: [{ sku: 'A', qty: 3, price: 19.99 }] });
    expect(order.total_amount).toBe(59.97);
    expect((await (await app.request(`/orders/${order.id}`)).json()).total_amount).toBe(59.97);
  });

  it('2 x 19.99 + 49.99 renders as 89.97 in the raw JSON', async () => {
    const res = await postJson(app, '/orders', SEED_ORDER);
    const text = await res.text();
    expect(text).toContain('"total_amount":89.97,');
    expect(text).not.toContain('89.97000');
  });

  it('a price with 3 decimals is 422 and writes nothing', async () => {
    const res = await postJson(app, '/orders', {
      customer_id: CUSTOMER,
      items: [{ sku: 'A', qty: 1, price: 1.005 }],
    });
    expect(res.status).toBe(422);
    expect((await res.json()).errors[0]).toMatchObject({
      field: 'items.0.price',
      message: 'must have at most two decimal places',
    });
  });

  it('the largest allowed amounts survive the round trip', async () => {
    const order = await create({
      customer_id: CUSTOMER,
      items: [{ sku: 'MAX', qty: 10, price: 9_999_999_999.99 }],
    });
    expect(order.total_amount).toBe(99_999_999_999.9);
    expect((await (await app.request(`/orders/${order.id}`)).json()).items[0].price).toBe(9_999_999_999.99);
  });
});

describe('the outbox row', () => {
  it('every created order has exactly one outbox row carrying the contract event', async () => {
    const orders = [
      await create(),
      await create({ customer_id: CUSTOMER, items: [{ sku: 'ONE', qty: 1, price: 0 }] }),
    ];
    for (const order of orders) {
      const rows = await db.selectFrom('outbox').selectAll().where('aggregate_id', '=', order.id).execute();
      expect(rows).toHaveLength(1);
      const [row] = rows;
      expect(row).toMatchObject({
        aggregate_type: 'order',
        event_type: 'order_created',
        subject: 'orders.order_created',
        headers: {},
        xid: expect.stringMatching(/^[1-9]\d*$/),
        partition: expect.any(Number),
      });
      // Written in the order's own transaction (the row's xid is the one that inserted the order), in
      // its aggregate's partition, waiting for that partition's cursor (not published), never failed.
      const { rows: facts } = await sql<{
        same_transaction: boolean;
        partition: number;
        pending: boolean;
        failures: number;
        dead: number;
      }>`
        SELECT (o.xid::text::bigint % 4294967296) = r.xmin::text::bigint AS same_transaction,
               ((hashtext('order/' || ${order.id}) & 2147483647) % 16)::int AS partition,
               NOT outbox_position_covers(o.xid, o.seq, c.acked_snapshot, c.acked_target, c.acked_after_xid,
                                          c.acked_after_seq) AS pending,
               (SELECT count(*)::int FROM outbox_failures AS f WHERE f.id = o.id) AS failures,
               (SELECT count(*)::int FROM outbox_dead AS d WHERE d.id = o.id) AS dead
        FROM outbox AS o JOIN outbox_cursor AS c USING (partition) JOIN orders AS r ON r.id::text = o.aggregate_id
        WHERE o.id = ${row?.id}`.execute(db);
      expect(facts).toEqual([
        { same_transaction: true, partition: row?.partition, pending: true, failures: 0, dead: 0 },
      ]);
      expect(row?.id).toMatch(/^[0-9a-f-]{36}$/);
      expect(row?.id).not.toBe(order.id);
      expect(row?.payload).toEqual(contractEvent(order));
      expect(row?.created_at.toISOString()).toBe(order.created_at);
    }
  });

  it('a failing outbox insert rolls back the order and its items', async () => {
    // A test-only trigger in this file's own database makes the outbox write fail inside the transaction.
    await sql`CREATE FUNCTION fail_outbox() RETURNS trigger LANGUAGE plpgsql AS $$
      BEGIN RAISE EXCEPTION 'outbox insert refused by test trigger'; END $$`.execute(db);
    await sql`CREATE TRIGGER fail_outbox BEFORE INSERT ON outbox FOR EACH ROW EXECUTE FUNCTION fail_outbox()`.execute(
      db,
    );
    const marker = `atomicity-${Date.now()}`;
    try {
      const res = await postJson(app, '/orders', { ...SEED_ORDER, metadata: { marker } });
      expect(res.status).toBe(500);
      const body = await res.json();
      expect(body.code).toBe('internal_error');
      expect(JSON.stringify(body)).not.toContain('test trigger'); // no internals in the body
    } finally {
      await sql`DROP TRIGGER fail_outbox ON outbox`.execute(db);
      await sql`DROP FUNCTION fail_outbox()`.execute(db);
    }
    const orphans = await db
      .selectFrom('orders')
      .select('id')
      .where(sql<boolean>`metadata->>'marker' = ${marker}`)
      .execute();
    expect(orphans).toEqual([]);
    const { n } = await db
      .selectFrom('order_items')
      .leftJoin('orders', 'orders.id', 'order_items.order_id')
      .select((eb) => eb.fn.countAll<string>().as('n'))
      .where('orders.id', 'is', null)
      .executeTakeFirstOrThrow();
    expect(Number(n)).toBe(0);
    // And the next order goes through again.
    await create();
  });
});

describe('concurrency', () => {
  it('200 concurrent creates over real HTTP give 200 orders and 200 outbox rows', async () => {
    const server = serve({ fetch: app.fetch, port: 0, hostname: '127.0.0.1' });
    await new Promise((r) => server.once('listening', r));
    const { port } = server.address() as AddressInfo;
    const customer = crypto.randomUUID();
    try {
      const responses = await Promise.all(
        Array.from({ length: 200 }, (_, i) =>
          fetch(`http://127.0.0.1:${port}/orders`, {
            method: 'POST',
            headers: { 'content-type': 'application/json' },
            body: JSON.stringify({
              customer_id: customer,
              items: [{ sku: `SKU-${i}`, qty: 1 + (i % 5), price: 1.01 }],
            }),
          }),
        ),
      );
      expect(responses.map((r) => r.status)).toEqual(Array(200).fill(201));
      const ids = new Set(await Promise.all(responses.map(async (r) => (await r.json()).id)));
      expect(ids.size).toBe(200);
    } finally {
      await new Promise((r) => server.close(r));
    }
    const orders = await db.selectFrom('orders').select('id').where('customer_id', '=', customer).execute();
    expect(orders).toHaveLength(200);
    const outbox = await db
      .selectFrom('outbox')
      .select('aggregate_id')
      .where(
        'aggregate_id',
        'in',
        orders.map((o) => o.id),
      )
      .execute();
    expect(outbox).toHaveLength(200);
    expect(new Set(outbox.map((r) => r.aggregate_id)).size).toBe(200);
  });
});

describe('reading and updating', () => {
  it('reads items back in request order', async () => {
    const skus = ['Z', 'A', 'M', 'B'];
    const order = await create({
      customer_id: CUSTOMER,
      items: skus.map((sku) => ({ sku, qty: 1, price: 1 })),
    });
    const read = await (await app.request(`/orders/${order.id}`)).json();
    expect(read.items.map((i: { sku: string }) => i.sku)).toEqual(skus);
    expect(read).toEqual(order);
  });

  it('PATCH bumps updated_at and keeps created_at', async () => {
    const order = await create();
    await sleep(5);
    const res = await postJson(app, `/orders/${order.id}`, { status: 'cancelled' }, 'PATCH');
    const updated = await res.json();
    expect(updated.status).toBe('cancelled');
    expect(updated.created_at).toBe(order.created_at);
    expect(Date.parse(updated.updated_at)).toBeGreaterThan(Date.parse(order.updated_at));
    expect((await (await app.request(`/orders/${order.id}`)).json()).status).toBe('cancelled');
  });

  it('timestamps are ISO 8601 UTC', async () => {
    const order = await create();
    for (const ts of [order.created_at, order.updated_at, order.items[0].created_at]) {
      expect(ts).toMatch(/^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z$/);
    }
  });
});

describe('listing', () => {
  /** Follows next_cursor through a customer's orders, `limit` a page, `maxPages` at most: the ids and each page's size. */
  async function pageThrough(customer: string, limit: number, maxPages = Number.POSITIVE_INFINITY) {
    const seen: string[] = [];
    const sizes: number[] = [];
    let cursor: string | null = null;
    do {
      const query: string = `customer_id=${customer}&limit=${limit}${cursor ? `&cursor=${cursor}` : ''}`;
      const res = await app.request(`/orders?${query}`);
      expect(res.status).toBe(200);
      const page = await res.json();
      sizes.push(page.orders.length);
      seen.push(...page.orders.map((o: { id: string }) => o.id));
      cursor = page.next_cursor;
    } while (cursor && sizes.length < maxPages);
    return { seen, sizes };
  }

  /** The customer's order ids as the database orders them, newest first (ties by id). */
  async function newestFirst(customer: string): Promise<string[]> {
    const rows = await db
      .selectFrom('orders')
      .select('id')
      .where('customer_id', '=', customer)
      .orderBy('created_at', 'desc')
      .orderBy('id', 'desc')
      .execute();
    return rows.map((r) => r.id);
  }

  it('pages newest first through every order exactly once, with filters', async () => {
    const customer = crypto.randomUUID();
    const created: string[] = [];
    for (let i = 0; i < 23; i++) {
      created.push((await create({ customer_id: customer, items: [{ sku: `L${i}`, qty: 1, price: 1 }] })).id);
    }
    // Two orders committed in the same millisecond are still ordered (by id) and never skipped.
    const { seen, sizes } = await pageThrough(customer, 5);
    for (const size of sizes) expect(size).toBeLessThanOrEqual(5);
    expect(sizes).toHaveLength(5);
    expect(seen).toHaveLength(23);
    expect(new Set(seen)).toEqual(new Set(created));
    expect(seen).toEqual(await newestFirst(customer));
  });

  it('pages exactly through orders a millisecond apart or less, whoever wrote them', async () => {
    // Other writers (now() defaults, scripts, migrations) store microseconds; the API itself writes
    // whole milliseconds. Six orders within one millisecond, two of them at the same microsecond.
    const customer = crypto.randomUUID();
    const micros = ['123001', '123002', '123450', '123450', '123998', '123999'];
    const rows = micros.map((us) => ({ id: crypto.randomUUID(), at: `2026-11-30 12:00:00.${us}+00` }));
    for (const { id, at } of rows) {
      await sql`INSERT INTO orders (id, customer_id, total_amount, created_at, updated_at)
                VALUES (${id}::uuid, ${customer}::uuid, 1, ${at}::timestamptz, ${at}::timestamptz)`.execute(
        db,
      );
    }
    const { seen } = await pageThrough(customer, 1, 20);
    const expected = await newestFirst(customer);
    expect(expected).toHaveLength(6);
    expect(seen).toEqual(expected);
  });

  it('still accepts a cursor issued before cursors carried microseconds', async () => {
    // Old cursors: base64url of [created_at to the millisecond, id]. A client paging across a deploy
    // keeps going; only that one step has the old millisecond precision.
    const customer = crypto.randomUUID();
    const older = await create({ customer_id: customer, items: [{ sku: 'O', qty: 1, price: 1 }] });
    const newer = await create({ customer_id: customer, items: [{ sku: 'N', qty: 1, price: 1 }] });
    const old = Buffer.from(JSON.stringify([newer.created_at, newer.id])).toString('base64url');
    const res = await app.request(`/orders?customer_id=${customer}&limit=5&cursor=${old}`);
    expect(res.status).toBe(200);
    expect((await res.json()).orders.map((o: { id: string }) => o.id)).toEqual([older.id]);
  });

  it('filters by status and defaults to 20 per page with items included', async () => {
    const customer = crypto.randomUUID();
    const placed = await create({ customer_id: customer, items: [{ sku: 'P', qty: 1, price: 1 }] });
    await create({ customer_id: customer, items: [{ sku: 'D', qty: 1, price: 1 }] });
    await postJson(app, `/orders/${placed.id}`, { status: 'placed' }, 'PATCH');
    const page = await (await app.request(`/orders?customer_id=${customer}&status=placed`)).json();
    expect(page.orders.map((o: { id: string }) => o.id)).toEqual([placed.id]);
    expect(page.orders[0].items).toHaveLength(1);
    expect(page.next_cursor).toBeNull();
    const all = await (await app.request('/orders')).json();
    expect(all.orders.length).toBe(20);
    expect(typeof all.next_cursor).toBe('string');
  });
});

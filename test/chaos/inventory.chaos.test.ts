import { spawn } from 'node:child_process';
import path from 'node:path';
import type { TestDatabaseOf } from '@orders/testkit';
import {
  createTestDatabase,
  type NatsServer,
  REPO_ROOT,
  startNatsServer,
  type TestDatabase,
} from '@orders/testkit';
import { sql } from 'kysely';
import { type NatsConnection, nanos } from 'nats';
import pg from 'pg';
import { afterAll, describe, expect, it } from 'vitest';
import type { InventoryDatabase } from '../../apps/inventory/src/schema.js';
import {
  createInventoryDatabase,
  type InventoryProcess,
  startInventory,
} from '../../apps/inventory/test/helpers.js';
import { natsClient, startApi, startRelay, waitAllMarked, waitFor } from '../../apps/relay/test/helpers.js';
import { type FaultyProxy, startFaultyProxy } from './proxy.js';

// Exactly once where it counts: 2,000 orders (a quarter of them cancelled at once, racing their own
// reservation) flow through the real API and relay into two inventory processes, which are SIGKILLed
// ten times meanwhile: at a random moment, while a handler waits inside its transaction (before the
// commit: the test holds the stock rows' locks, so the handler blocks there), and after the commit but
// before the ack (the test freezes their NATS connections, waits until the delivered event's inbox row
// is committed, then kills them). Afterwards every sku's reserved_qty is exactly the sum of the
// quantities of the orders not cancelled, every cancelled order released exactly what it reserved, and
// a `relay replay` of the whole orders stream changes nothing.

const ORDERS = 2000;
const SKUS = Array.from({ length: 12 }, (_, i) => `SKU-${String(i).padStart(2, '0')}`);
const DURABLE = 'inventory';

let nats: NatsServer | undefined;
let nc: NatsConnection | undefined;
let ordersDb: TestDatabase | undefined;
let inventoryDb: TestDatabaseOf<InventoryDatabase> | undefined;
const cleanups: (() => Promise<unknown>)[] = [];
afterAll(async () => {
  for (const c of cleanups.reverse()) await c().catch(() => {});
  await nc?.close();
  await nats?.dispose();
  await ordersDb?.drop();
  await inventoryDb?.drop();
});

interface Placed {
  readonly id: string;
  readonly items: { sku: string; qty: number }[];
  cancelled: boolean;
}

// Runtime: 77 s on a quiet 2-vCPU machine; 120-130 s at load average 6-7; at 10 (the machine shared
// with other suites) the consumer ran at ~35 events/s and the run took over 170 s, hence the margins.
describe('inventory consumer under SIGKILL', () => {
  it('reserves exactly the ordered quantities and releases exactly what cancels reserved, through 10 kills and a replay', async () => {
    nats = await startNatsServer();
    nc = await natsClient(nats);
    [ordersDb, inventoryDb] = await Promise.all([createTestDatabase(), createInventoryDatabase()]);
    const orders = ordersDb;
    const inventory = inventoryDb;
    const jsm = await nc.jetstreamManager();
    // A 1 s duplicate window (the relay keeps an existing stream as it is), so that the replay at the
    // end really puts every event into the stream a second time.
    await jsm.streams.add({ name: 'orders', subjects: ['orders.>'], duplicate_window: nanos(1000) });
    await sql`INSERT INTO inventory_items (sku, qty_on_hand) SELECT unnest(${SKUS}::text[]), 1000000`.execute(
      inventory.db,
    );

    const api = await startApi(orders.url);
    cleanups.push(() => api.stop());
    const relay = await startRelay(orders.url, nats, { RELAY_BATCH_SIZE: '100' });
    cleanups.push(async () => {
      relay.kill('SIGKILL');
      await relay.exited;
    });

    const proxies: FaultyProxy[] = await Promise.all([
      startFaultyProxy(nats.port),
      startFaultyProxy(nats.port),
    ]);
    cleanups.push(() => Promise.all(proxies.map((p) => p.close())));
    const names = ['inventory-a', 'inventory-b'] as const;
    const start = (i: 0 | 1) =>
      startInventory(inventory.url, `nats://127.0.0.1:${proxies[i]?.port}`, {
        SERVICE_NAME: names[i],
        CONSUMER_ACK_WAIT_MS: '1000',
        // A handler blocked on the test's locks waits there (the default 5 s would cancel it and retry).
        INVENTORY_DB_STATEMENT_TIMEOUT_MS: '60000',
      });
    const procs: InventoryProcess[] = await Promise.all([start(0), start(1)]);
    cleanups.push(async () => {
      for (const p of procs) if (p.alive()) p.kill('SIGKILL');
    });
    const kill = async (i: 0 | 1) => {
      const p = procs[i] as InventoryProcess;
      p.kill('SIGKILL');
      expect(await p.exited).toMatchObject({ signal: 'SIGKILL' });
    };
    // -------------------------------------------------------------------------------- the load
    const placed: Placed[] = [];
    let loadDone = false;
    const load = (async () => {
      let next = 0;
      await Promise.all(
        Array.from({ length: 8 }, async () => {
          while (next < ORDERS) {
            const n = next++;
            const lines = 1 + (n % 3);
            const items = Array.from({ length: lines }, (_, j) => ({
              sku: SKUS[(n * 7 + j * 5) % SKUS.length] as string,
              qty: 1 + ((n + j) % 5),
            }));
            const res = await api.createOrder({
              customer_id: crypto.randomUUID(),
              items: items.map((i) => ({ ...i, price: 1 })),
            });
            expect(res.status).toBe(201);
            const order: Placed = { id: res.body.id, items, cancelled: false };
            placed.push(order);
            if (n % 4 === 0) {
              const cancel = await fetch(`${api.base}/orders/${order.id}/cancel`, { method: 'POST' });
              expect(cancel.status).toBe(200);
              order.cancelled = true;
            }
          }
        }),
      );
      loadDone = true;
    })();

    // -------------------------------------------------------------------------------- the kills
    const consumerInfo = () => jsm.consumers.info('orders', DURABLE);
    const hits = { random: 0, beforeCommit: 0, afterCommit: 0 };
    const modes = ['beforeCommit', 'afterCommit', 'random'] as const;
    for (let k = 0; k < 10; k++) {
      await new Promise((r) => setTimeout(r, 300 + Math.random() * 500));
      const mode = modes[k % 3] ?? 'random';
      if (mode === 'random') {
        const i = Math.random() < 0.5 ? 0 : 1;
        await kill(i);
        procs[i] = await start(i);
        hits.random++;
      } else if (mode === 'beforeCommit') {
        // Hold every stock row (in sku order, the handlers' lock order): the handler of the event in
        // flight blocks inside its transaction, its inbox row written and not committed. Kill the process whose session waits.
        const locker = new pg.Client({ connectionString: inventory.url });
        await locker.connect();
        try {
          await locker.query('BEGIN');
          await locker.query('SELECT sku FROM inventory_items ORDER BY sku FOR UPDATE');
          const waiting = await waitFor(
            'a consumer waiting inside its transaction',
            async () => {
              const { rows } = await locker.query<{ application_name: string }>(
                `SELECT application_name FROM pg_stat_activity
                 WHERE datname = current_database() AND wait_event_type = 'Lock' AND application_name LIKE 'inventory-_'`,
              );
              return rows[0]?.application_name;
            },
            5000,
          ).catch(() => undefined);
          // Seen in about one run in three, at the first such kill only: no handler shows up waiting
          // within 5 s (the process that got the event had no session yet; cause not found). Then the
          // kill is a random one, and the run must still settle exactly.
          const i =
            waiting === undefined
              ? Math.random() < 0.5
                ? 0
                : 1
              : (names.indexOf(waiting as (typeof names)[number]) as 0 | 1);
          await kill(i);
          if (waiting === undefined) hits.random++;
          else hits.beforeCommit++;
          await locker.query('ROLLBACK');
          procs[i] = await start(i);
        } finally {
          await locker.end();
        }
      } else {
        // Freeze both connections to NATS: the event in flight commits (the database is not frozen)
        // and its ack goes nowhere. Once its inbox row is there and the server still waits for the
        // ack, kill both processes.
        // A freeze that lands between an ack and the next delivery holds that delivery in the proxy:
        // nothing is in flight to commit. Then let the traffic through and freeze again (up to four
        // times; one CI run missed all three afterCommit kills with a single try each).
        let committedUnacked = false;
        for (let attempt = 0; attempt < 4 && !committedUnacked; attempt++) {
          if (attempt > 0) {
            for (const p of proxies) p.pass();
            await new Promise((r) => setTimeout(r, 100 + Math.random() * 200));
          }
          for (const p of proxies) p.freeze();
          committedUnacked = await waitFor(
            'the delivered event committed and not acknowledged',
            async () => {
              const info = await consumerInfo();
              const delivered = info.delivered.stream_seq;
              if (info.ack_floor.stream_seq >= delivered) return false;
              const { rows } = await sql<{ n: string }>`
                SELECT count(*) AS n FROM consumer_inbox WHERE consumer = ${DURABLE} AND stream_seq = ${delivered}`.execute(
                inventory.db,
              );
              return Number(rows[0]?.n) === 1;
            },
            2500,
          ).catch(() => false);
        }
        if (committedUnacked) hits.afterCommit++;
        await Promise.all([kill(0), kill(1)]);
        for (const p of proxies) {
          p.cut();
          p.pass();
        }
        [procs[0], procs[1]] = await Promise.all([start(0), start(1)]);
      }
    }
    await load;
    expect(loadDone).toBe(true);
    expect(placed.length).toBe(ORDERS);
    // Each way of dying was really exercised (a freeze may find no event in flight: it still kills).
    expect(hits.beforeCommit).toBeGreaterThanOrEqual(3);
    expect(hits.afterCommit).toBeGreaterThanOrEqual(1);
    expect(hits.random + hits.beforeCommit).toBe(7);

    // -------------------------------------------------------------------------------- settled
    const settled = async () => {
      await waitAllMarked(orders.db, 120_000);
      await waitFor(
        'the consumer to catch up',
        async () => {
          const info = await consumerInfo();
          return info.num_pending === 0 && info.num_ack_pending === 0;
        },
        150_000,
        100,
      ).catch(async (err) => {
        // Slow or stuck? Where the durable stands, twice, and what the processes last said.
        const a = await consumerInfo();
        await new Promise((r) => setTimeout(r, 3000));
        const b = await consumerInfo();
        const where = (i: typeof a) => ({
          delivered: i.delivered,
          ack: i.ack_floor,
          pending: i.num_pending,
          waiting: i.num_waiting,
        });
        const said = procs.map((p) =>
          p.lines
            .filter((l) => !l.includes('"level":"info"'))
            .slice(-6)
            .join('\n'),
        );
        throw new Error(
          `${(err as Error).message}\n${JSON.stringify([where(a), where(b)])}\n${said.join('\n---\n')}`,
        );
      });
    };
    await settled();

    const expected = new Map<string, number>(SKUS.map((s) => [s, 0]));
    for (const o of placed) {
      if (o.cancelled) continue;
      for (const i of o.items) expected.set(i.sku, (expected.get(i.sku) ?? 0) + i.qty);
    }
    const stock = async () =>
      new Map(
        (await inventory.db.selectFrom('inventory_items').select(['sku', 'reserved_qty']).execute()).map(
          (r) => [r.sku, r.reserved_qty],
        ),
      );
    expect(await stock()).toEqual(expected);

    // Per order: one reservation, released exactly when the order was cancelled.
    const reservations = await sql<{ order_id: string; qty: string; released: boolean }>`
      SELECT order_id, sum(qty) AS qty, bool_and(released_at IS NOT NULL) AS released
      FROM inventory_reservations GROUP BY order_id`.execute(inventory.db);
    const byOrder = new Map(reservations.rows.map((r) => [r.order_id, r]));
    expect(byOrder.size).toBe(ORDERS);
    for (const o of placed) {
      const r = byOrder.get(o.id);
      expect(Number(r?.qty)).toBe(o.items.reduce((s, i) => s + i.qty, 0));
      expect(r?.released).toBe(o.cancelled);
    }
    // Its own events, once each, in its outbox for its relay.
    const outgoing = async () =>
      (
        await sql<{ event_type: string; n: string; orders: string }>`
          SELECT event_type, count(*) AS n, count(DISTINCT aggregate_id) AS orders FROM outbox GROUP BY event_type ORDER BY 1`.execute(
          inventory.db,
        )
      ).rows.map((r) => [r.event_type, Number(r.n), Number(r.orders)]);
    const cancelled = placed.filter((o) => o.cancelled).length;
    expect(await outgoing()).toEqual([
      ['stock_released', cancelled, cancelled],
      ['stock_reserved', ORDERS, ORDERS],
    ]);
    expect(await inventory.db.selectFrom('consumer_dead').selectAll().execute()).toEqual([]);

    // -------------------------------------------------------------------------------- the replay
    const before = { stock: await stock(), outbox: await outgoing() };
    const duplicates = async () =>
      (await Promise.all(procs.map((p) => p.metric('consumer_duplicates_total')))).reduce((a, b) => a + b, 0);
    const handled = async () =>
      (await Promise.all(procs.map((p) => p.metric('consumer_handled_total')))).reduce((a, b) => a + b, 0);
    const [dupBefore, handledBefore] = [await duplicates(), await handled()];
    const streamBefore = (await jsm.streams.info('orders')).state.messages;
    await new Promise((r) => setTimeout(r, 1200)); // past the stream's 1 s duplicate window
    const replay = spawn(
      process.execPath,
      [path.join(REPO_ROOT, 'apps/relay/dist/cli.js'), 'replay', '--since', '1h'],
      {
        cwd: REPO_ROOT,
        env: {
          PATH: process.env['PATH'] ?? '',
          DATABASE_URL: orders.url,
          NATS_URL: nats.url,
          LOG_LEVEL: 'warn',
        },
        stdio: ['ignore', 'pipe', 'pipe'],
      },
    );
    let replayOutput = '';
    replay.stdout.on('data', (d) => (replayOutput += d));
    replay.stderr.on('data', (d) => (replayOutput += d));
    const code = await new Promise<number | null>((r) => replay.once('close', r));
    expect(code, replayOutput).toBe(0);
    const replayed = (await jsm.streams.info('orders')).state.messages - streamBefore;
    expect(replayed).toBe(ORDERS + cancelled);
    await settled();
    expect(await duplicates()).toBe(dupBefore + replayed);
    expect(await handled()).toBe(handledBefore);
    expect(await stock()).toEqual(before.stock);
    expect(await outgoing()).toEqual(before.outbox);
  }, 280_000);
});

import { sql } from 'kysely';
import { describe, expect, it } from 'vitest';
import { createOrders, readStream, startApi, startRelay, streamCount, waitFor } from './helpers.js';
import { relayTestServers } from './servers.js';

// Per-order ordering with racing relays: every order goes through three status changes in quick
// succession, half of them while three relays publish, half while no relay runs (a backlog where each
// order has four waiting events, then drained by three relays). In the stream, each order's events must
// follow commit order.

const ORDERS = 2000;
const STEPS = ['placed', 'shipped', 'completed'] as const;

const { tdb, nats, nc } = await relayTestServers();

describe('per-order ordering', () => {
  it(`3 relays, ${ORDERS} orders each moved through ${STEPS.length} statuses: each order's events reach the stream in commit order`, async () => {
    const api = await startApi(tdb.url);
    const startRelays = () =>
      Promise.all([1, 2, 3].map(() => startRelay(tdb.url, nats, { RELAY_BATCH_SIZE: '100' })));
    const stopRelays = async (list: Awaited<ReturnType<typeof startRelays>>) => {
      for (const r of list) r.kill('SIGTERM');
      await Promise.all(list.map((r) => r.exited));
    };
    /** Creates `n` orders and moves each through the steps, its changes back to back, 32 orders at a time. */
    const createAndMove = async (n: number): Promise<string[]> => {
      const created = await createOrders(api, n, 16);
      expect(created.every((r) => r.status === 201)).toBe(true);
      const ids = created.map((r) => r.body.id);
      let next = 0;
      await Promise.all(
        Array.from({ length: 32 }, async () => {
          while (next < ids.length) {
            const id = ids[next++] ?? '';
            for (const status of STEPS) {
              const res = await fetch(`${api.base}/orders/${id}`, {
                method: 'PATCH',
                headers: { 'content-type': 'application/json' },
                body: JSON.stringify({ status }),
              });
              expect(res.status).toBe(200);
              await res.arrayBuffer();
            }
          }
        }),
      );
      return ids;
    };
    let relays = await startRelays();
    const published: number[] = [];
    try {
      // Half live: the relays publish while the changes commit.
      const live = await createAndMove(ORDERS / 2);
      // Half as a backlog: every order has four waiting events when the three relays start on them.
      await waitFor(
        'the live half published',
        async () => (await streamCount(nc, 'orders')) >= (ORDERS / 2) * 4,
        60_000,
      );
      published.push(...(await Promise.all(relays.map((r) => r.metric('outbox_published_total')))));
      await stopRelays(relays);
      const backlog = await createAndMove(ORDERS / 2);
      relays = await startRelays();
      const ids = [...live, ...backlog];
      const total = ORDERS * (1 + STEPS.length);
      await waitFor(`${total} messages`, async () => (await streamCount(nc, 'orders')) >= total, 90_000, 50);
      const messages = await readStream(nc, 'orders');
      expect(messages).toHaveLength(total);

      // Commit order per order, from the outbox (seq), and stream order per order.
      const { rows } = await sql<{ id: string; aggregate_id: string }>`
        SELECT id, aggregate_id FROM outbox ORDER BY seq`.execute(tdb.db);
      const committed = new Map<string, string[]>();
      for (const r of rows) committed.set(r.aggregate_id, [...(committed.get(r.aggregate_id) ?? []), r.id]);
      const streamed = new Map<string, string[]>();
      for (const m of messages) {
        const orderId = (JSON.parse(m.data) as { order_id: string }).order_id;
        streamed.set(orderId, [...(streamed.get(orderId) ?? []), m.msgId ?? '']);
      }
      const outOfOrder = ids.filter(
        (id) => JSON.stringify(streamed.get(id)) !== JSON.stringify(committed.get(id)),
      );
      console.info(`${outOfOrder.length} of ${ORDERS} orders out of commit order in the stream`);
      expect(outOfOrder).toEqual([]);
      // And the story each order tells is the lifecycle: created, then draft->placed->shipped->completed.
      const sample = messages
        .filter((m) => (JSON.parse(m.data) as { order_id: string }).order_id === ids[0])
        .map((m) => JSON.parse(m.data) as { event_type: string; to?: string });
      expect(sample.map((e) => e.to ?? e.event_type)).toEqual(['order_created', ...STEPS]);
      // Every relay took part while the orders were live (relays share the partitions within a
      // second). The backlog (4,000 events) may be drained by the first relay to claim before it
      // gives partitions back (a relay drains it in about 0.1 s, a rebalance runs every 0.25 s), so
      // what is checked there is that the three come to share the partitions.
      for (const n of published) expect(n).toBeGreaterThan(0);
      await waitFor(
        'each relay holding partitions',
        async () =>
          (await Promise.all(relays.map((r) => r.metric('outbox_relay_partitions_held')))).every(
            (n) => n > 0,
          ),
        20_000,
      );
    } finally {
      await Promise.all([stopRelays(relays), api.stop()]);
    }
  }, 180_000);
});

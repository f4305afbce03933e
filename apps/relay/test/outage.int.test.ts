import { setTimeout as sleep } from 'node:timers/promises';
import { sql } from 'kysely';
import { describe, expect, it } from 'vitest';
import {
  closeDatabase,
  createOrders,
  exactlyOnce,
  insertBacklog,
  markAllRead,
  natsClient,
  readStream,
  readyStatus,
  reopenDatabase,
  startApi,
  streamCount,
  unreadIds,
  waitAllMarked,
  waitFor,
  withRelay,
} from './helpers.js';
import { relayTestServers } from './servers.js';

const { tdb, nats } = await relayTestServers();

describe('NATS outage', () => {
  it('keeps taking orders while NATS is down, then delivers all 500 exactly once, each partition in log order', async () => {
    const env = { RELAY_PUBLISH_TIMEOUT_MS: '1000', RELAY_LEASE_MS: '5000', RELAY_BACKOFF_MAX_MS: '1000' };
    await withRelay(tdb.url, nats, env, async (relay) => {
      const api = await startApi(tdb.url);
      try {
        await waitFor('relay ready', async () => (await readyStatus(relay)) === 200);
        await nats.stop();
        await waitFor('relay not ready', async () => (await readyStatus(relay)) === 503);
        const ready = await (await fetch(`${relay.base}/ready`)).json();
        expect(ready).toMatchObject({ status: 'not_ready', database: 'ok', nats: 'unreachable' });
        expect((await fetch(`${relay.base}/health`)).status).toBe(200);

        const created = await createOrders(api, 500);
        expect(created.map((r) => r.status)).toEqual(Array(500).fill(201));
        await sleep(1500); // the relay tries, and fails, meanwhile

        await nats.start();
        const nc = await natsClient(nats);
        try {
          await waitFor('500 messages', async () => (await streamCount(nc, 'orders')) >= 500, 60_000, 50);
          await waitAllMarked(tdb.db);
          const messages = await readStream(nc, 'orders');
          const rows = await tdb.db
            .selectFrom('outbox')
            .select(['id', 'partition'])
            .orderBy('xid')
            .orderBy('seq')
            .execute();
          expect(
            exactlyOnce(
              messages,
              rows.map((r) => r.id),
            ),
          ).toEqual({ missing: [], duplicated: [], unexpected: [] });
          // Each partition's rows reach the stream in its log's order, (xid, seq).
          const partitionOf = new Map(rows.map((r) => [r.id, r.partition]));
          for (let p = 0; p < 16; p++) {
            expect(messages.filter((m) => partitionOf.get(m.msgId ?? '') === p).map((m) => m.msgId)).toEqual(
              rows.filter((r) => r.partition === p).map((r) => r.id),
            );
          }
          // An outage is not the rows' fault: no attempt was counted against any of them.
          const { rows: failures } = await sql<{ n: number }>`
            SELECT (SELECT count(*) FROM outbox_failures) + (SELECT count(*) FROM outbox_dead) AS n`.execute(
            tdb.db,
          );
          expect(Number(failures[0]?.n)).toBe(0);
        } finally {
          await nc.close();
        }
        expect(relay.alive()).toBe(true);
        expect(relay.lines.some((l) => /nats disconnected|nats unreachable/.test(l))).toBe(true);
        await waitFor('relay ready again', async () => (await readyStatus(relay)) === 200);
      } finally {
        await api.stop();
      }
    });
  }, 90_000);

  it('starts with NATS down, reports not ready, and delivers once NATS comes up', async () => {
    await nats.stop();
    await sql`INSERT INTO outbox (id, aggregate_type, aggregate_id, event_type, subject, payload)
              VALUES (gen_random_uuid(), 'order', 'x', 'order_created', 'orders.order_created', '{"late": true}')`.execute(
      tdb.db,
    );
    await withRelay(tdb.url, nats, { RELAY_BACKOFF_MAX_MS: '500' }, async (relay) => {
      expect(await readyStatus(relay)).toBe(503);
      await nats.start();
      await waitFor('relay ready', async () => (await readyStatus(relay)) === 200, 20_000);
      await waitAllMarked(tdb.db);
    });
  });
});

describe('PostgreSQL outage', () => {
  it('keeps running while the database refuses connections, and resumes by itself', async () => {
    const env = { RELAY_BACKOFF_MAX_MS: '500', RELAY_POLL_INTERVAL_MS: '200' };
    await withRelay(tdb.url, nats, env, async (relay) => {
      try {
        await waitFor('relay ready', async () => (await readyStatus(relay)) === 200);
        await closeDatabase(tdb);
        await waitFor('relay not ready', async () => (await readyStatus(relay)) === 503, 15_000);
        expect(relay.alive()).toBe(true);
        await reopenDatabase(tdb);
        await waitFor('relay ready again', async () => (await readyStatus(relay)) === 200, 15_000);
        const [row] = (
          await sql<{
            id: string;
          }>`INSERT INTO outbox (id, aggregate_type, aggregate_id, event_type, subject, payload)
            VALUES (gen_random_uuid(), 'order', 'y', 'order_created', 'orders.order_created', '{"after": "outage"}') RETURNING id`.execute(
            tdb.db,
          )
        ).rows;
        await waitFor(
          'the new row published',
          async () => (await unreadIds(tdb.db, [row?.id ?? ''])).length === 0,
          15_000,
        );
        expect(relay.alive()).toBe(true);
      } finally {
        await reopenDatabase(tdb);
      }
    });
  });

  it('loses its database in the middle of a drain and finishes it exactly once, without exiting', async () => {
    const nc = await natsClient(nats);
    await markAllRead(tdb.db);
    const before = await streamCount(nc, 'orders');
    const ids = await insertBacklog(tdb.db, 20_000);
    // A read or cursor write lost with the connection: the batch is read again from the cursor, and
    // what it had published comes back as re-publishes (recognised by Nats-Msg-Id).
    const env = {
      RELAY_BACKOFF_MAX_MS: '300',
      RELAY_BATCH_SIZE: '100',
      RELAY_LEASE_MS: '3000',
      RELAY_PUBLISH_TIMEOUT_MS: '1000',
    };
    await withRelay(tdb.url, nats, env, async (relay) => {
      try {
        await waitFor('draining', async () => (await streamCount(nc, 'orders')) > before + 2000, 20_000, 5);
        await closeDatabase(tdb);
        const cutAt = (await streamCount(nc, 'orders')) - before;
        await sleep(1000);
        await reopenDatabase(tdb);
        await waitFor(
          'every row published',
          async () => (await streamCount(nc, 'orders')) >= before + ids.length,
          60_000,
          50,
        );
        await waitAllMarked(tdb.db, 30_000);
        expect(cutAt).toBeLessThan(ids.length);
        const messages = (await readStream(nc, 'orders')).slice(before);
        expect(exactlyOnce(messages, ids)).toEqual({ missing: [], duplicated: [], unexpected: [] });
        expect(relay.alive()).toBe(true);
        expect(relay.lines.some((l) => l.includes('database unavailable'))).toBe(true);
      } finally {
        await reopenDatabase(tdb);
        await nc.close();
      }
    });
  }, 90_000);
});

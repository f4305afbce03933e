import { createTestDatabase, startNatsServer } from '@orders/testkit';
import { sql } from 'kysely';
import { afterAll, describe, expect, it } from 'vitest';
import {
  createOrders,
  exactlyOnce,
  insertBacklog,
  natsClient,
  readStream,
  startApi,
  startRelay,
  streamCount,
  waitFor,
} from './helpers.js';

const tdb = await createTestDatabase();
const nats = await startNatsServer();
afterAll(async () => {
  await nats.dispose();
  await tdb.drop();
});

describe('NATS outage', () => {
  it('keeps taking orders while NATS is down, then delivers all 500 exactly once, in creation order', async () => {
    const relay = await startRelay(tdb.url, nats, {
      RELAY_PUBLISH_TIMEOUT_MS: '1000',
      RELAY_LEASE_MS: '5000',
      RELAY_BACKOFF_MAX_MS: '1000',
    });
    const api = await startApi(tdb.url);
    try {
      await waitFor('relay ready', async () => (await fetch(`http://127.0.0.1:${relay.port}/ready`)).ok);
      await nats.stop();
      await waitFor(
        'relay not ready',
        async () => (await fetch(`http://127.0.0.1:${relay.port}/ready`)).status === 503,
      );
      const ready = await (await fetch(`http://127.0.0.1:${relay.port}/ready`)).json();
      expect(ready).toMatchObject({ status: 'not_ready', database: 'ok', nats: 'unreachable' });
      expect((await fetch(`http://127.0.0.1:${relay.port}/health`)).status).toBe(200);

      const created = await createOrders(api, 500);
      expect(created.map((r) => r.status)).toEqual(Array(500).fill(201));
      await new Promise((r) => setTimeout(r, 1500)); // the relay tries, and fails, meanwhile

      await nats.start();
      const nc = await natsClient(nats);
      try {
        await waitFor('500 messages', async () => (await streamCount(nc, 'orders')) >= 500, 60_000, 50);
        await waitFor('every row marked', async () => {
          const left = await tdb.db
            .selectFrom('outbox')
            .select('id')
            .where('published_at', 'is', null)
            .execute();
          return left.length === 0;
        });
        const messages = await readStream(nc, 'orders');
        const rows = await tdb.db
          .selectFrom('outbox')
          .select(['id', 'attempts', 'last_error'])
          .orderBy('seq')
          .execute();
        expect(
          exactlyOnce(
            messages,
            rows.map((r) => r.id),
          ),
        ).toEqual({ missing: [], duplicated: [], unexpected: [] });
        // One relay: stream order is creation order.
        expect(messages.map((m) => m.msgId)).toEqual(rows.map((r) => r.id));
        // An outage is not the rows' fault: no attempt was counted against any of them.
        expect(rows.every((r) => r.attempts === 0 && r.last_error === null)).toBe(true);
      } finally {
        await nc.close();
      }
      expect(relay.alive()).toBe(true);
      expect(relay.lines.some((l) => /nats disconnected|nats unreachable/.test(l))).toBe(true);
      await waitFor(
        'relay ready again',
        async () => (await fetch(`http://127.0.0.1:${relay.port}/ready`)).ok,
      );
    } finally {
      await api.stop();
      relay.kill('SIGTERM');
      await relay.exited;
    }
  }, 90_000);

  it('starts with NATS down, reports not ready, and delivers once NATS comes up', async () => {
    await nats.stop();
    await sql`INSERT INTO outbox (id, aggregate_type, aggregate_id, event_type, subject, payload)
              VALUES (gen_random_uuid(), 'order', 'x', 'order_created', 'orders.order_created', '{"late": true}')`.execute(
      tdb.db,
    );
    const relay = await startRelay(tdb.url, nats, { RELAY_BACKOFF_MAX_MS: '500' });
    try {
      expect((await fetch(`http://127.0.0.1:${relay.port}/ready`)).status).toBe(503);
      await nats.start();
      await waitFor(
        'relay ready',
        async () => (await fetch(`http://127.0.0.1:${relay.port}/ready`)).ok,
        20_000,
      );
      await waitFor('every row marked', async () => {
        const left = await tdb.db
          .selectFrom('outbox')
          .select('id')
          .where('published_at', 'is', null)
          .execute();
        return left.length === 0;
      });
    } finally {
      relay.kill('SIGTERM');
      await relay.exited;
    }
  });
});

describe('PostgreSQL outage', () => {
  it('keeps running while the database refuses connections, and resumes by itself', async () => {
    const relay = await startRelay(tdb.url, nats, {
      RELAY_BACKOFF_MAX_MS: '500',
      RELAY_POLL_INTERVAL_MS: '200',
    });
    const admin = tdb.adminUrl;
    const { adminQuery } = await import('@orders/testkit');
    try {
      await waitFor('relay ready', async () => (await fetch(`http://127.0.0.1:${relay.port}/ready`)).ok);
      // Cut the relay off: no new connections to this database, and the existing ones terminated.
      await adminQuery(admin, [
        `ALTER DATABASE "${tdb.name}" ALLOW_CONNECTIONS false`,
        `SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = '${tdb.name}' AND application_name LIKE '%relay%'`,
      ]);
      await waitFor(
        'relay not ready',
        async () => (await fetch(`http://127.0.0.1:${relay.port}/ready`)).status === 503,
        15_000,
      );
      expect(relay.alive()).toBe(true);
      await adminQuery(admin, [`ALTER DATABASE "${tdb.name}" ALLOW_CONNECTIONS true`]);
      await waitFor(
        'relay ready again',
        async () => (await fetch(`http://127.0.0.1:${relay.port}/ready`)).ok,
        15_000,
      );
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
        async () => {
          const r = await tdb.db
            .selectFrom('outbox')
            .select('published_at')
            .where('id', '=', row?.id ?? '')
            .executeTakeFirst();
          return r?.published_at != null;
        },
        15_000,
      );
      expect(relay.alive()).toBe(true);
    } finally {
      await adminQuery(admin, [`ALTER DATABASE "${tdb.name}" ALLOW_CONNECTIONS true`]);
      relay.kill('SIGTERM');
      await relay.exited;
    }
  });

  it('loses its database in the middle of a drain and finishes it exactly once, without exiting', async () => {
    const { adminQuery } = await import('@orders/testkit');
    const nc = await natsClient(nats);
    await tdb.db
      .updateTable('outbox')
      .set({ published_at: new Date() })
      .where('published_at', 'is', null)
      .execute();
    const before = await streamCount(nc, 'orders');
    const ids = await insertBacklog(tdb.db, 20_000);
    // A claim whose answer is lost with the connection leaves its rows leased: they come back when
    // the lease expires, so keep it short here.
    const relay = await startRelay(tdb.url, nats, {
      RELAY_BACKOFF_MAX_MS: '300',
      RELAY_BATCH_SIZE: '100',
      RELAY_LEASE_MS: '3000',
      RELAY_PUBLISH_TIMEOUT_MS: '1000',
    });
    try {
      await waitFor('draining', async () => (await streamCount(nc, 'orders')) > before + 2000, 20_000, 5);
      await adminQuery(tdb.adminUrl, [
        `ALTER DATABASE "${tdb.name}" ALLOW_CONNECTIONS false`,
        `SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = '${tdb.name}' AND application_name LIKE '%relay%'`,
      ]);
      const cutAt = (await streamCount(nc, 'orders')) - before;
      await new Promise((r) => setTimeout(r, 1000));
      await adminQuery(tdb.adminUrl, [`ALTER DATABASE "${tdb.name}" ALLOW_CONNECTIONS true`]);
      await waitFor(
        'every row published',
        async () => (await streamCount(nc, 'orders')) >= before + ids.length,
        60_000,
        50,
      );
      await waitFor(
        'every row marked',
        async () => {
          const left = await tdb.db
            .selectFrom('outbox')
            .select('id')
            .where('published_at', 'is', null)
            .limit(1)
            .execute();
          return left.length === 0;
        },
        30_000,
      );
      expect(cutAt).toBeLessThan(ids.length);
      const messages = (await readStream(nc, 'orders')).slice(before);
      expect(exactlyOnce(messages, ids)).toEqual({ missing: [], duplicated: [], unexpected: [] });
      expect(relay.alive()).toBe(true);
      expect(relay.lines.some((l) => l.includes('database unavailable'))).toBe(true);
    } finally {
      await adminQuery(tdb.adminUrl, [`ALTER DATABASE "${tdb.name}" ALLOW_CONNECTIONS true`]);
      await nc.close();
      relay.kill('SIGTERM');
      await relay.exited;
    }
  }, 90_000);
});

import { setTimeout as sleep } from 'node:timers/promises';
import { createTestDatabase, startNatsServer } from '@orders/testkit';
import { sql } from 'kysely';
import { afterAll, describe, expect, it } from 'vitest';
import {
  createOrders,
  exactlyOnce,
  insertBacklog,
  markAllRead,
  natsClient,
  readStream,
  startApi,
  startRelay,
  streamCount,
  unreadIds,
  waitAllMarked,
  waitFor,
} from './helpers.js';

const tdb = await createTestDatabase();
const nats = await startNatsServer();
afterAll(async () => {
  await nats.dispose();
  await tdb.drop();
});

describe('NATS outage', () => {
  it('keeps taking orders while NATS is down, then delivers all 500 exactly once, each partition in log order', async () => {
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
      await waitAllMarked(tdb.db);
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
        async () => (await unreadIds(tdb.db, [row?.id ?? ''])).length === 0,
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
    await markAllRead(tdb.db);
    const before = await streamCount(nc, 'orders');
    const ids = await insertBacklog(tdb.db, 20_000);
    // A read or cursor write lost with the connection: the batch is read again from the cursor, and
    // what it had published comes back as re-publishes (recognised by Nats-Msg-Id).
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
      await sleep(1000);
      await adminQuery(tdb.adminUrl, [`ALTER DATABASE "${tdb.name}" ALLOW_CONNECTIONS true`]);
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
      await adminQuery(tdb.adminUrl, [`ALTER DATABASE "${tdb.name}" ALLOW_CONNECTIONS true`]);
      await nc.close();
      relay.kill('SIGTERM');
      await relay.exited;
    }
  }, 90_000);
});

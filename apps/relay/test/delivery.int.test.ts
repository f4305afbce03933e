import { setTimeout as sleep } from 'node:timers/promises';
import { contractEvent } from '@orders/testkit';
import { sql } from 'kysely';
import { nanos, StorageType } from 'nats';
import { describe, expect, it } from 'vitest';
import {
  createOrders,
  exactlyOnce,
  insertBacklog,
  readStream,
  startApi,
  startRelay,
  streamCount,
  waitAllMarked,
  waitFor,
} from './helpers.js';
import { relayTestServers } from './servers.js';

const { tdb, nats, nc } = await relayTestServers();

describe('relay delivery', () => {
  it('500 orders through the API give exactly 500 contract events, Nats-Msg-Id = outbox id', async () => {
    const relay = await startRelay(tdb.url, nats);
    const api = await startApi(tdb.url);
    try {
      const created = await createOrders(api, 500);
      expect(created.every((r) => r.status === 201)).toBe(true);
      await waitFor('500 messages', async () => (await streamCount(nc, 'orders')) >= 500);
      await sleep(300); // anything extra would show up now
      const messages = await readStream(nc, 'orders');
      expect(messages).toHaveLength(500);

      const outbox = await tdb.db.selectFrom('outbox').select(['id', 'aggregate_id']).execute();
      const outboxIdByOrder = new Map(outbox.map((r) => [r.aggregate_id, r.id]));
      expect(
        exactlyOnce(
          messages,
          outbox.map((r) => r.id),
        ),
      ).toEqual({ missing: [], duplicated: [], unexpected: [] });

      const byMsgId = new Map(messages.map((m) => [m.msgId, m]));
      for (const { body: order } of created) {
        const message = byMsgId.get(outboxIdByOrder.get(order.id));
        expect(message?.subject).toBe('orders.order_created');
        expect(JSON.parse(message?.data ?? 'null')).toEqual(contractEvent(order));
      }
      await waitAllMarked(tdb.db);
      expect(await relay.metric('outbox_published_total')).toBe(500);
      expect(await relay.metric('outbox_pending')).toBe(0);
    } finally {
      await api.stop();
      relay.kill('SIGTERM');
      await relay.exited;
    }
  });

  it('sends the row headers as NATS headers', async () => {
    const traceparent = '00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01';
    const [id] = await insertBacklog(tdb.db, 1);
    await sql`UPDATE outbox SET headers = ${JSON.stringify({ traceparent, 'x-tenant': 'acme' })}::jsonb WHERE id = ${id}`.execute(
      tdb.db,
    );
    const relay = await startRelay(tdb.url, nats);
    try {
      const message = await waitFor('the message', async () =>
        (await readStream(nc, 'orders')).find((m) => m.msgId === id),
      );
      expect(message.headers).toMatchObject({ traceparent, 'x-tenant': 'acme', 'Nats-Msg-Id': id });
    } finally {
      relay.kill('SIGTERM');
      await relay.exited;
    }
  });

  it('SIGTERM while draining: finishes the batch in flight, gives its partitions back, exits 0 within 10 s', async () => {
    const ids = await insertBacklog(tdb.db, 20_000);
    const relay = await startRelay(tdb.url, nats, { RELAY_BATCH_SIZE: '200' });
    await waitFor(
      'draining to start',
      async () => (await relay.metric('outbox_published_total')) > 0,
      10_000,
      5,
    );
    const stopAt = Date.now();
    relay.kill('SIGTERM');
    const { code } = await relay.exited;
    expect(code).toBe(0);
    expect(Date.now() - stopAt).toBeLessThan(10_000);
    expect(relay.lines.at(-1)).toMatch(/"msg":"stopped"/);
    // It gave every partition back (the next relay need not wait for a lease), and its last cursors
    // say nothing is in flight: whatever it read it published and recorded, or never sent.
    const { rows: owned } = await sql<{ n: number }>`
      SELECT count(*)::int AS n FROM outbox_partitions WHERE owner IS NOT NULL`.execute(tdb.db);
    expect(owned[0]?.n).toBe(0);
    const { rows: reach } = await sql<{ n: number }>`
      SELECT count(*)::int AS n FROM outbox_cursor WHERE reach_snapshot IS NOT NULL`.execute(tdb.db);
    expect(reach[0]?.n).toBe(0);
    // A fresh relay finishes the rest, exactly once.
    const again = await startRelay(tdb.url, nats);
    try {
      await waitFor(
        'the backlog',
        async () => (await streamCount(nc, 'orders')) >= 500 + 1 + ids.length,
        60_000,
        50,
      );
      const result = exactlyOnce(
        (await readStream(nc, 'orders')).filter((m) => ids.includes(m.msgId ?? '')),
        ids,
      );
      expect(result.missing).toEqual([]);
      expect(result.duplicated).toEqual([]);
    } finally {
      again.kill('SIGTERM');
      await again.exited;
    }
  }, 90_000);
});

describe('the stream', () => {
  it('creates the stream with <stream>.> subjects, file storage and the configured duplicate window', async () => {
    const relay = await startRelay(tdb.url, nats, {
      NATS_STREAM: 'fresh',
      RELAY_DUPLICATE_WINDOW_MS: '300000',
    });
    try {
      await waitFor('ready', async () => (await fetch(`http://127.0.0.1:${relay.port}/ready`)).ok);
      const info = await (await nc.jetstreamManager()).streams.info('fresh');
      expect(info.config.subjects).toEqual(['fresh.>']);
      expect(info.config.storage).toBe(StorageType.File);
      expect(info.config.duplicate_window).toBe(nanos(300_000));
    } finally {
      relay.kill('SIGTERM');
      await relay.exited;
    }
  });

  it('never overwrites an existing stream, and warns when its duplicate window is short', async () => {
    const jsm = await nc.jetstreamManager();
    await jsm.streams.add({
      name: 'short',
      subjects: ['short.>', 'extra.>'],
      storage: StorageType.Memory,
      duplicate_window: nanos(1000),
    });
    const relay = await startRelay(tdb.url, nats, { NATS_STREAM: 'short' });
    try {
      const warning = JSON.parse(await relay.waitForLine(/duplicate window is shorter/));
      expect(warning).toMatchObject({ level: 'warn', duplicateWindowMs: 1000, wantedMs: 120_000 });
      const info = await jsm.streams.info('short');
      expect(info.config.subjects).toEqual(['short.>', 'extra.>']);
      expect(info.config.storage).toBe(StorageType.Memory);
      expect(info.config.duplicate_window).toBe(nanos(1000));
    } finally {
      relay.kill('SIGTERM');
      await relay.exited;
    }
  });
});

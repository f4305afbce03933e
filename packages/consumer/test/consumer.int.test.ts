import { randomUUID } from 'node:crypto';
import { type Database, OUTBOX_MIGRATIONS } from '@orders/db';
import { createLogger } from '@orders/logger';
import {
  createTestDatabaseFrom,
  type NatsServer,
  startNatsServer,
  type TestDatabaseOf,
} from '@orders/testkit';
import { sql } from 'kysely';
import { connect, type NatsConnection, nanos, headers as natsHeaders } from 'nats';
import { Registry } from 'prom-client';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  CONSUMER_MIGRATIONS,
  type Consumer,
  type ConsumerSettings,
  type ConsumerTables,
  createConsumer,
  createConsumerMetrics,
  type EventHandler,
  PoisonMessageError,
  pruneInboxBatch,
} from '../src/index.js';

// The consumer against a real nats-server of the test's own and a real database with the outbox and
// inbox migrations: each test uses its own stream and durable.

interface TestDb extends ConsumerTables, Pick<Database, 'outbox'> {
  handled: { event_id: string; stream_seq: number; key: string };
}

let nats: NatsServer;
let nc: NatsConnection;
let database: TestDatabaseOf<TestDb>;
const logger = createLogger({
  name: 'consumer-test',
  level: (process.env['TEST_LOG_LEVEL'] as 'silent' | undefined) ?? 'silent',
});

beforeAll(async () => {
  nats = await startNatsServer();
  nc = await connect({ servers: nats.url });
  database = await createTestDatabaseFrom<TestDb>([OUTBOX_MIGRATIONS, CONSUMER_MIGRATIONS], {
    prefix: 'consumer_test',
  });
  await sql`CREATE TABLE handled (event_id text NOT NULL, stream_seq bigint NOT NULL, key text NOT NULL)`.execute(
    database.db,
  );
});
afterAll(async () => {
  await nc?.close();
  await nats?.dispose();
  await database?.drop();
});

let streams = 0;
/** A stream of the test's own; a short duplicate window, so a re-publish of an id lands again (a replay). */
async function newStream(): Promise<string> {
  const name = `s${++streams}`;
  const jsm = await nc.jetstreamManager();
  await jsm.streams.add({ name, subjects: [`${name}.>`], duplicate_window: nanos(200) });
  return name;
}

async function publish(stream: string, id: string, body: unknown, raw?: string): Promise<void> {
  const h = natsHeaders();
  h.set('Nats-Msg-Id', id);
  await nc.jetstream().publish(`${stream}.evt`, new TextEncoder().encode(raw ?? JSON.stringify(body)), {
    headers: h,
    msgID: id,
  });
}

function settings(stream: string, extra: Partial<ConsumerSettings> = {}): ConsumerSettings {
  return {
    stream,
    name: `${stream}-durable`,
    filterSubject: `${stream}.>`,
    ackWaitMs: 2000,
    maxDeliver: 3,
    retryDelayMs: 50,
    retryMaxMs: 200,
    ...extra,
  };
}

const recordHandled: EventHandler<TestDb> = async (event, { trx }) => {
  const { key } = event.payload as { key: string };
  await trx.insertInto('handled').values({ event_id: event.id, stream_seq: event.streamSeq, key }).execute();
};

async function until(what: string, probe: () => Promise<boolean>, timeoutMs = 15_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (await probe().catch(() => false)) return;
    await new Promise((r) => setTimeout(r, 25));
  }
  throw new Error(`timed out waiting for ${what}`);
}

async function handledRows(stream: string) {
  return sql<{ event_id: string; stream_seq: string; key: string }>`
    SELECT h.event_id, h.stream_seq, h.key FROM handled h
    JOIN consumer_inbox i ON i.event_id = h.event_id AND i.consumer = ${`${stream}-durable`}
    ORDER BY h.stream_seq`
    .execute(database.db)
    .then((r) => r.rows);
}

async function metricValue(registry: Registry, name: string): Promise<number> {
  const text = await registry.metrics();
  const line = text.split('\n').find((l) => l.startsWith(`${name} `) || l.startsWith(`${name}{`));
  return line ? Number(line.split(' ').at(-1)) : Number.NaN;
}

describe('consumer', () => {
  it('runs the handler once per event id: a re-published id is acknowledged without running it', async () => {
    const stream = await newStream();
    const registry = new Registry();
    const consumer: Consumer = createConsumer({
      db: database.db,
      nats: nc,
      logger,
      settings: settings(stream),
      handler: recordHandled,
      metrics: createConsumerMetrics(registry, async () => consumer.position()),
    });
    const ids = Array.from({ length: 20 }, () => randomUUID());
    for (const [i, id] of ids.entries()) await publish(stream, id, { key: `k${i}` });
    consumer.start();
    await until('20 handled', async () => (await handledRows(stream)).length === 20);
    // Past the duplicate window, the same ids go into the stream again, as `relay replay` sends them.
    await new Promise((r) => setTimeout(r, 300));
    for (const [i, id] of ids.slice(0, 5).entries()) await publish(stream, id, { key: `k${i}` });
    const info = await (await nc.jetstreamManager()).streams.info(stream);
    expect(info.state.messages).toBe(25);
    await until('5 duplicates', async () => (await metricValue(registry, 'consumer_duplicates_total')) === 5);
    await until('acked', async () => (await consumer.position()).ackPending === 0);
    expect((await handledRows(stream)).length).toBe(20);
    expect(await metricValue(registry, 'consumer_handled_total')).toBe(20);
    expect(await metricValue(registry, 'consumer_lag_messages')).toBe(0);
    await consumer.stop();
  });

  it('retries a failing handler with backoff, keeps stream order, and sets a hopeless event aside as a dead letter', async () => {
    const stream = await newStream();
    const registry = new Registry();
    const attempts = new Map<string, number[]>();
    const consumer: Consumer = createConsumer({
      db: database.db,
      nats: nc,
      logger,
      settings: settings(stream, { maxDeliver: 3, retryDelayMs: 100, retryMaxMs: 1000 }),
      metrics: createConsumerMetrics(registry, async () => consumer.position()),
      handler: async (event, ctx) => {
        const { key, fail } = event.payload as { key: string; fail: number };
        attempts.set(key, [...(attempts.get(key) ?? []), performance.now()]);
        await recordHandled(event, ctx);
        // The handler's write rolls back with the failure: only the last, good run stays.
        if (event.deliveries <= fail) throw new Error(`${key} failed on delivery ${event.deliveries}`);
      },
    });
    await publish(stream, randomUUID(), { key: 'a', fail: 0 });
    await publish(stream, randomUUID(), { key: 'b', fail: 2 }); // succeeds on the 3rd delivery
    await publish(stream, randomUUID(), { key: 'c', fail: 99 }); // never: dead after 3
    await publish(stream, 'not-json', null, '{oops');
    await publish(stream, randomUUID(), { key: 'e', fail: 0 });
    consumer.start();
    await until('a, b and e handled', async () => (await handledRows(stream)).length === 3);
    const rows = await handledRows(stream);
    // One durable, max_ack_pending 1: e waited for b's retries and c's dead letter, so stream order holds.
    expect(rows.map((r) => r.key)).toEqual(['a', 'b', 'e']);
    const b = attempts.get('b') ?? [];
    expect(b.length).toBe(3);
    // 100 ms then 200 ms between deliveries (nak with a delay), give or take the round trips.
    expect((b[1] ?? 0) - (b[0] ?? 0)).toBeGreaterThanOrEqual(90);
    expect((b[2] ?? 0) - (b[1] ?? 0)).toBeGreaterThanOrEqual(190);
    expect(attempts.get('c')?.length).toBe(3);

    const dead = await database.db
      .selectFrom('consumer_dead')
      .selectAll()
      .where('consumer', '=', `${stream}-durable`)
      .orderBy('stream_seq')
      .execute();
    expect(dead.map((d) => [d.deliveries, d.last_error])).toEqual([
      [3, 'c failed on delivery 3'],
      [1, expect.stringMatching(/^payload is not JSON/)],
    ]);
    expect(dead[1]?.event_id).toBe('not-json');
    expect(dead[1]?.payload).toBe('{oops');
    expect(await metricValue(registry, 'consumer_dead_total')).toBe(2);
    expect(await metricValue(registry, 'consumer_failures_total')).toBe(2 + 3 + 1);
    await until('all acked', async () => {
      const p = await consumer.position();
      return p.pending === 0 && p.ackPending === 0;
    });
    await consumer.stop();
  });

  it('writes the handler’s outgoing events to the outbox in its transaction, and none when it fails', async () => {
    const stream = await newStream();
    const consumer: Consumer = createConsumer({
      db: database.db,
      nats: nc,
      logger,
      settings: settings(stream, { maxDeliver: 1 }),
      handler: async (event, ctx) => {
        const { key, fail } = event.payload as { key: string; fail: boolean };
        await ctx.enqueue({
          aggregateType: 'test',
          aggregateId: key,
          eventType: 'reacted',
          subject: `out.reacted`,
          payload: { to: event.id },
        });
        if (fail) throw new PoisonMessageError('refused');
      },
    });
    const good = randomUUID();
    await publish(stream, good, { key: 'x', fail: false });
    await publish(stream, randomUUID(), { key: 'y', fail: true });
    consumer.start();
    await until(
      'both done',
      async () => (await consumer.position()).pending === 0 && (await consumer.position()).ackPending === 0,
    );
    const rows = await sql<{ aggregate_id: string; payload: { to: string } }>`
      SELECT aggregate_id, payload FROM outbox WHERE subject = 'out.reacted'`.execute(database.db);
    expect(rows.rows).toEqual([{ aggregate_id: 'x', payload: { to: good } }]);
    await consumer.stop();
  });

  it('stop() lets the event in flight commit and be acknowledged', async () => {
    const stream = await newStream();
    let entered: () => void = () => {};
    const inHandler = new Promise<void>((r) => (entered = r));
    const consumer: Consumer = createConsumer({
      db: database.db,
      nats: nc,
      logger,
      settings: settings(stream),
      handler: async (event, ctx) => {
        entered();
        await new Promise((r) => setTimeout(r, 500));
        await recordHandled(event, ctx);
      },
    });
    await publish(stream, randomUUID(), { key: 'slow' });
    await publish(stream, randomUUID(), { key: 'next' });
    consumer.start();
    await inHandler;
    await consumer.stop();
    expect((await handledRows(stream)).map((r) => r.key)).toEqual(['slow']);
    const p = await consumer.position();
    // The first is acknowledged; the second was never delivered (nothing waits on an ack wait).
    expect(p.ackPending).toBe(0);
    expect(p.pending).toBe(1);
    expect(consumer.ready).toBe(false);
  });

  it('retention deletes only inbox rows of its consumer older than the cutoff, in batches', async () => {
    await sql`
      INSERT INTO consumer_inbox (consumer, event_id, subject, stream_seq, processed_at)
      SELECT c, c || '-' || i, 'x', i, now() - (CASE WHEN i <= 5 THEN interval '40 days' ELSE interval '1 day' END)
      FROM unnest(ARRAY['keep-me', 'prune-me']) AS c, generate_series(1, 8) AS i`.execute(database.db);
    const cutoff = new Date(Date.now() - 30 * 86_400_000);
    expect(await pruneInboxBatch(database.db, 'prune-me', cutoff, 3)).toBe(3);
    expect(await pruneInboxBatch(database.db, 'prune-me', cutoff, 3)).toBe(2);
    expect(await pruneInboxBatch(database.db, 'prune-me', cutoff, 3)).toBe(0);
    const left = await sql<{ consumer: string; n: string }>`
      SELECT consumer, count(*) AS n FROM consumer_inbox WHERE consumer IN ('keep-me', 'prune-me')
      GROUP BY consumer ORDER BY consumer`.execute(database.db);
    expect(left.rows.map((r) => [r.consumer, Number(r.n)])).toEqual([
      ['keep-me', 8],
      ['prune-me', 3],
    ]);
  });
});

import { setTimeout as sleep } from 'node:timers/promises';
import { RELAY_PRESENCE_LOCK } from '@orders/db';
import { createLogger } from '@orders/logger';
import { sql } from 'kysely';
import pg from 'pg';
import { afterAll, afterEach, describe, expect, it } from 'vitest';
import type { createRelayMetrics } from '../src/metrics.js';
import { readStream, unreadIds, waitFor } from './helpers.js';
import { inProcessRelay } from './in-process-relay.js';
import { relayTestServers } from './servers.js';

// What the relay does when a batch fails in part, against a real PostgreSQL (a trigger makes the
// failure count fail there) and a real nats-server: a row that fails by itself (a subject NATS
// refuses) whose failure cannot be recorded, and a row whose publish times out (a plain subscriber
// takes the subject and never acknowledges): a transient failure, not the row's fault, which must not
// hold back the rows of other partitions.

const { tdb, nats, nc } = await relayTestServers();
// Takes the "silent" subject: the publish gets no PubAck, no "no responders" either.
const silent = nc.subscribe('silent.order_created');
// Registered after the servers' teardown, so it runs before it (after-hooks run in reverse order).
afterAll(() => {
  silent.unsubscribe();
});
afterEach(async () => {
  await sql`DROP TRIGGER IF EXISTS break_failures ON outbox_failures`.execute(tdb.db);
  await sql`TRUNCATE outbox, outbox_failures, outbox_dead`.execute(tdb.db);
});

/** Makes every insert into outbox_failures fail with `message`: counting a row failure is refused. */
async function breakFailureCounting(message: string): Promise<void> {
  await sql
    .raw(`CREATE OR REPLACE FUNCTION break_failures() RETURNS trigger LANGUAGE plpgsql AS $$
          BEGIN RAISE EXCEPTION '${message}'; END $$`)
    .execute(tdb.db);
  await sql
    .raw(
      'CREATE TRIGGER break_failures BEFORE INSERT ON outbox_failures FOR EACH ROW EXECUTE FUNCTION break_failures()',
    )
    .execute(tdb.db);
}

/** `n` rows of new aggregates, none of them in partition `avoid` (the generated column's formula). */
async function insertRows(subject: string, n = 1, avoid = -1): Promise<string[]> {
  const { rows } = await sql<{ id: string }>`
    INSERT INTO outbox (id, aggregate_type, aggregate_id, event_type, subject, payload)
    SELECT gen_random_uuid(), 'order', a, 'order_created', ${subject}, '{}'
    FROM (SELECT gen_random_uuid()::text AS a FROM generate_series(1, ${n * 4}::int)) AS candidates
    WHERE (hashtext('order/' || a) & 2147483647) % 16 <> ${avoid}
    LIMIT ${n}
    RETURNING id`.execute(tdb.db);
  return rows.map((r) => r.id);
}

/** A relay in this process (holding its presence lock, as main.ts's listener does), logging into `lines`. */
async function runRelay(
  test: (lines: Record<string, unknown>[], metrics: ReturnType<typeof createRelayMetrics>) => Promise<void>,
): Promise<void> {
  const lines: Record<string, unknown>[] = [];
  const logger = createLogger({
    name: 'batch-errors',
    level: 'debug',
    destination: { write: (line: string) => void lines.push(JSON.parse(line)) },
  });
  const presence = new pg.Client({ connectionString: tdb.url });
  await presence.connect();
  await presence.query('SELECT pg_advisory_lock($1, hashtext($2))', [RELAY_PRESENCE_LOCK, 'batch-errors']);
  const relay = inProcessRelay({
    db: tdb.db,
    natsUrl: nats.url,
    stream: 'batcherr',
    name: 'batch-errors',
    logger,
    publishTimeoutMs: 300,
    backoffMaxMs: 200,
    settings: { batchSize: 50, leaseMs: 120_000 },
  });
  relay.start();
  try {
    await test(lines, relay.metrics);
  } finally {
    await relay.stop();
    await presence.end();
  }
}

const counter = async (metrics: ReturnType<typeof createRelayMetrics>, name: string, kind: string) =>
  (await metrics.registry.getSingleMetric(name)?.get())?.values.find((v) => v.labels['kind'] === kind)
    ?.value ?? 0;

describe('a batch whose publishes or closing writes fail', () => {
  it('counting a row failure fails: that error is what is logged, and the row is read and tried again', async () => {
    await breakFailureCounting('test: recording failures is broken');
    const [poison] = await insertRows('batcherr.order created'); // a space: refused as the row's own fault
    await runRelay(async (lines, metrics) => {
      await waitFor(
        'the row tried three times',
        async () => (await counter(metrics, 'outbox_publish_failures_total', 'row')) >= 3,
        15_000,
      );
      const failed = lines.filter((l) => l['msg'] === 'relay batch failed; retrying');
      expect(failed.length).toBeGreaterThan(0);
      expect(failed[0]?.['err']).toMatchObject({ message: 'test: recording failures is broken' });
      // Never counted, never dead: it stays in the log until its failure can be recorded.
      const { rows } = await sql<{ n: number }>`
        SELECT count(*)::int AS n FROM outbox WHERE id = ${poison ?? ''}`.execute(tdb.db);
      expect(rows[0]?.n).toBe(1);
    });
  });

  it('a publish that times out holds back its own partition only: every other row is published once', async () => {
    const [stuck] = await insertRows('silent.order_created');
    const { rows: where } = await sql<{ partition: number }>`
      SELECT partition FROM outbox WHERE id = ${stuck ?? ''}`.execute(tdb.db);
    // In the other partitions: rows after the stuck one in its own partition are sent again with it.
    const others = await insertRows('batcherr.order_created', 40, where[0]?.partition);
    await runRelay(async (lines, metrics) => {
      await waitFor(
        'the timed-out row tried twice',
        async () => (await counter(metrics, 'outbox_publish_failures_total', 'transient')) >= 2,
        15_000,
      );
      const batch = lines.find((l) => /^nats unavailable/.test(String(l['msg'])));
      expect(batch).toMatchObject({ msg: 'nats unavailable; the batch will be read again' });
      expect(batch?.['err']).toMatchObject({ type: 'NatsUnavailable' });
      const elsewhere = others;
      expect(elsewhere).toHaveLength(40);
      await waitFor(
        'the rows of the other partitions in the stream',
        async () => (await streamIds()).filter((id) => elsewhere.includes(id)).length === elsewhere.length,
        15_000,
      );
      // The other partitions moved on: they were not read and sent again with the stuck one (a
      // re-send would show as a duplicate PubAck), and each is in the stream once.
      await sleep(1000);
      const duplicates = (await metrics.registry.getSingleMetric('outbox_duplicates_total')?.get())
        ?.values[0];
      expect(duplicates?.value ?? 0).toBe(0);
      const ids = await streamIds();
      for (const id of elsewhere) expect(ids.filter((x) => x === id)).toHaveLength(1);
    });
  });
});

describe('a cursor write that fails before a batch is published', () => {
  afterEach(async () => {
    await sql`DROP TRIGGER IF EXISTS break_cursor_once ON outbox_cursors`.execute(tdb.db);
  });

  it('sends nothing of that batch and reads it again: every row is published once', async () => {
    // The first cursor insert (the batch's reach, written before its publish) fails, once.
    await sql
      .raw(`CREATE SEQUENCE IF NOT EXISTS cursor_writes;
            CREATE OR REPLACE FUNCTION break_cursor_once() RETURNS trigger LANGUAGE plpgsql AS $$
            BEGIN
              -- A sequence, not a table: it counts the attempt even though the statement rolls back.
              IF nextval('cursor_writes') = 1 THEN
                RAISE EXCEPTION 'test: the cursor write fails';
              END IF;
              RETURN NEW;
            END $$;
            CREATE TRIGGER break_cursor_once BEFORE INSERT ON outbox_cursors FOR EACH ROW
              EXECUTE FUNCTION break_cursor_once();`)
      .execute(tdb.db);
    const ids = await insertRows('batcherr.order_created', 30);
    await runRelay(async (lines) => {
      await waitFor('every row read', async () => (await unreadIds(tdb.db, ids)).length === 0, 15_000);
      expect(
        lines.some(
          (l) => (l['err'] as { message?: string } | undefined)?.message === 'test: the cursor write fails',
        ),
      ).toBe(true);
    });
    const sent = await streamIds();
    for (const id of ids) expect(sent.filter((x) => x === id)).toHaveLength(1);
  });
});

/** Every Nats-Msg-Id in the relay's stream, in stream order (repeats included). */
async function streamIds(): Promise<string[]> {
  return (await readStream(nc, 'batcherr')).map((m) => m.msgId ?? '');
}

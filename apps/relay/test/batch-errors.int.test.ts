import { createLogger } from '@orders/logger';
import { createTestDatabase, startNatsServer } from '@orders/testkit';
import { sql } from 'kysely';
import { afterAll, afterEach, describe, expect, it } from 'vitest';
import { createRelayMetrics } from '../src/metrics.js';
import { NatsLink } from '../src/nats.js';
import { createRelay } from '../src/relay.js';
import { natsClient, waitFor } from './helpers.js';

// What the relay does when the database refuses the writes that end a batch, against a real
// PostgreSQL (a trigger makes the statement fail there) and a real nats-server. One batch holds a
// row that fails by itself (a subject NATS refuses) and one whose publish times out (a plain
// subscriber takes the subject and never acknowledges): a transient failure, not the row's fault.

const tdb = await createTestDatabase();
const nats = await startNatsServer();
const nc = await natsClient(nats);
// Takes the "silent" subject: the publish gets no PubAck, no "no responders" either.
const silent = nc.subscribe('silent.order_created');
afterAll(async () => {
  silent.unsubscribe();
  await nc.close();
  await nats.dispose();
  await tdb.drop();
});
afterEach(async () => {
  await sql`DROP TRIGGER IF EXISTS break_outbox ON outbox`.execute(tdb.db);
  await sql`TRUNCATE outbox`.execute(tdb.db);
});

/** Makes every UPDATE of outbox that matches `when` fail with `message`. */
async function breakUpdates(when: string, message: string): Promise<void> {
  await sql
    .raw(`CREATE OR REPLACE FUNCTION break_outbox() RETURNS trigger LANGUAGE plpgsql AS $$
          BEGIN RAISE EXCEPTION '${message}'; END $$`)
    .execute(tdb.db);
  await sql
    .raw(`CREATE TRIGGER break_outbox BEFORE UPDATE ON outbox FOR EACH ROW WHEN (${when})
          EXECUTE FUNCTION break_outbox()`)
    .execute(tdb.db);
}

async function insertRow(subject: string): Promise<string> {
  const { rows } = await sql<{ id: string }>`
    INSERT INTO outbox (id, aggregate_type, aggregate_id, event_type, subject, payload)
    VALUES (gen_random_uuid(), 'order', gen_random_uuid()::text, 'order_created', ${subject}, '{}')
    RETURNING id`.execute(tdb.db);
  return rows[0]?.id ?? '';
}

/** A relay in this process with a long lease, logging into `lines`. */
async function runRelay(test: (lines: Record<string, unknown>[]) => Promise<void>): Promise<void> {
  const lines: Record<string, unknown>[] = [];
  const logger = createLogger({
    name: 'batch-errors',
    level: 'debug',
    destination: { write: (line: string) => void lines.push(JSON.parse(line)) },
  });
  const link = new NatsLink({
    url: nats.url,
    stream: 'batcherr',
    duplicateWindowMs: 120_000,
    publishTimeoutMs: 300,
    backoffMaxMs: 200,
    name: 'batch-errors',
    logger,
  });
  const relay = createRelay({
    db: tdb.db,
    nats: link,
    metrics: createRelayMetrics(tdb.db),
    logger,
    settings: {
      relayId: 'batch-errors',
      ordering: 'none',
      batchSize: 10,
      pollIntervalMs: 100,
      // Far longer than the test: a row taken again within it was released, not expired.
      leaseMs: 120_000,
      maxAttempts: 5,
      retryDelayMs: 100,
      backoffMaxMs: 200,
    },
  });
  link.start();
  relay.start();
  try {
    await test(lines);
  } finally {
    await relay.stop();
    await link.stop();
  }
}

const claimsOf = async (id: string) =>
  (await tdb.db.selectFrom('outbox').select('claims').where('id', '=', id).executeTakeFirstOrThrow()).claims;

describe('a batch whose closing writes fail', () => {
  it('recording the row failures fails: the transient rows are still released, and that first error is what is logged', async () => {
    await breakUpdates('NEW.attempts <> OLD.attempts', 'test: recording failures is broken');
    await insertRow('batcherr.order created'); // a space: refused as the row's own fault
    const transient = await insertRow('silent.order_created');
    await runRelay(async (lines) => {
      // Claimed again long before its lease ends: it was given back after each failed batch.
      await waitFor('the transient row taken again', async () => (await claimsOf(transient)) >= 3, 15_000);
      const failed = lines.filter((l) => l['msg'] === 'relay batch failed; retrying');
      expect(failed.length).toBeGreaterThan(0);
      expect(failed[0]?.['err']).toMatchObject({ message: 'test: recording failures is broken' });
    });
  });

  it('releasing the transient rows fails: the publish failure stays the error, the failed release is logged', async () => {
    await breakUpdates(
      'OLD.locked_by IS NOT NULL AND NEW.locked_by IS NULL AND NEW.attempts = OLD.attempts AND NEW.published_at IS NULL',
      'test: releasing claims is broken',
    );
    const transient = await insertRow('silent.order_created');
    await runRelay(async (lines) => {
      const isBatchError = (l: Record<string, unknown>) => /retrying$/.test(String(l['msg']));
      await waitFor('the batch error logged', async () => lines.some(isBatchError), 15_000);
      const batch = lines.find(isBatchError);
      expect(batch).toMatchObject({ msg: 'nats unavailable; rows released, retrying' });
      expect(batch?.['err']).toMatchObject({
        type: 'NatsUnavailable',
        message: expect.stringMatching(/^1 of 1 publishes failed/),
      });
      const release = lines.find((l) => String(l['msg']).startsWith('could not release claimed rows'));
      expect(release).toMatchObject({
        level: 'warn',
        rows: 1,
        err: { message: 'test: releasing claims is broken' },
        cause: '1 of 1 publishes failed',
      });
      // Not released: it waits for its lease (or for the orphan check if this relay dies).
      expect(await claimsOf(transient)).toBe(1);
    });
  });
});

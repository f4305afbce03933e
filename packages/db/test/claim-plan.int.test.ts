import { createTestDatabase } from '@orders/testkit';
import { sql } from 'kysely';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type ClaimOptions, claimOutboxBatch, claimOutboxBatchQuery } from '../src/index.js';

// The claim must cost about one batch of work whatever the planner believes about the outbox. The
// dangerous belief is "nothing is waiting": statistics gathered while the outbox was drained, then
// a backlog built up (a NATS outage, relays stopped for a deploy). These tests create exactly that
// and count the rows each plan node handled (EXPLAIN ANALYZE), which, unlike time, does not drift
// with the machine's load.

const tdb = await createTestDatabase();
const BATCH = 500;
const BACKLOG = 5000;

/** Rows produced plus rows filtered out, over every loop of every node of an EXPLAIN ANALYZE plan. */
function rowsHandled(plan: Record<string, unknown>): number {
  const loops = Number(plan['Actual Loops'] ?? 1);
  const own =
    (Number(plan['Actual Rows'] ?? 0) +
      Number(plan['Rows Removed by Filter'] ?? 0) +
      Number(plan['Rows Removed by Join Filter'] ?? 0)) *
    loops;
  const children = (plan['Plans'] as Record<string, unknown>[] | undefined) ?? [];
  return own + children.reduce((sum, child) => sum + rowsHandled(child), 0);
}

/** Thrown to roll back a transaction with a result. */
class Rollback<T> {
  constructor(readonly result: T) {}
}

async function explainClaim(options: ClaimOptions): Promise<{ handled: number; plan: string }> {
  // EXPLAIN ANALYZE runs the UPDATE: roll it back so every case starts from the same backlog.
  try {
    await tdb.db.transaction().execute(async (trx) => {
      const { rows } = await sql<{ 'QUERY PLAN': [{ Plan: Record<string, unknown> }] }>`
        EXPLAIN (ANALYZE, FORMAT JSON) ${claimOutboxBatchQuery(options)}`.execute(trx);
      const plan = rows[0]?.['QUERY PLAN'][0].Plan ?? {};
      throw new Rollback({ handled: rowsHandled(plan), plan: JSON.stringify(plan) });
    });
  } catch (err) {
    if (err instanceof Rollback) return err.result;
    throw err;
  }
  throw new Error('unreachable');
}

beforeAll(async () => {
  // Autovacuum off for this table, so nothing refreshes the statistics behind the test's back.
  await sql`ALTER TABLE outbox SET (autovacuum_enabled = off)`.execute(tdb.db);
  await sql`
    INSERT INTO outbox (id, aggregate_type, aggregate_id, event_type, subject, payload, published_at)
    SELECT gen_random_uuid(), 'order', gen_random_uuid()::text, 'order_created', 'orders.order_created',
           jsonb_build_object('n', i), now()
    FROM generate_series(1, 20000) AS i`.execute(tdb.db);
  await sql`ANALYZE outbox`.execute(tdb.db); // the planner now "knows" nothing is waiting
  // The backlog: single-event aggregates, plus a few aggregates with several events waiting.
  await sql`
    INSERT INTO outbox (id, aggregate_type, aggregate_id, event_type, subject, payload)
    SELECT gen_random_uuid(), 'order', CASE WHEN i % 10 = 0 THEN 'multi-' || (i % 100) ELSE gen_random_uuid()::text END,
           'order_created', 'orders.order_created', jsonb_build_object('n', i)
    FROM generate_series(1, ${BACKLOG}) AS i`.execute(tdb.db);
});
afterAll(() => tdb.drop());

describe('the claim under statistics that say nothing is waiting', () => {
  for (const perAggregateOrder of [true, false]) {
    it(`handles about one batch of rows, not batch x backlog (per-aggregate order ${perAggregateOrder ? 'on' : 'off'})`, async () => {
      const { handled, plan } = await explainClaim({
        limit: BATCH,
        leaseMs: 30_000,
        relayId: 'plan-test',
        perAggregateOrder,
        orphanedLeases: true,
      });
      // A good plan handles a few rows per claimed row (scan, probe, lock, update); the anti-join
      // this guards against handled BATCH x BACKLOG = 2,500,000.
      expect(handled, plan).toBeLessThan(20 * BATCH);
    });
  }

  it('still claims correctly: one row per waiting aggregate, oldest first, never an aggregate twice', async () => {
    const claimed = await claimOutboxBatch(tdb.db, {
      limit: BATCH,
      leaseMs: 30_000,
      relayId: 'plan-test',
      perAggregateOrder: true,
    });
    expect(claimed).toHaveLength(BATCH);
    const { rows } = await sql<{ aggregate_id: string; seq: string }>`
      SELECT aggregate_id, seq FROM outbox WHERE locked_by = 'plan-test' ORDER BY seq`.execute(tdb.db);
    const aggregates = rows.map((r) => r.aggregate_id);
    expect(new Set(aggregates).size).toBe(aggregates.length);
    // Each claimed row is the earliest waiting row of its aggregate.
    const { rows: earlier } = await sql<{ n: string }>`
      SELECT count(*) AS n FROM outbox AS c
      WHERE c.locked_by = 'plan-test' AND EXISTS (
        SELECT 1 FROM outbox AS e
        WHERE e.aggregate_id = c.aggregate_id AND e.seq < c.seq AND e.published_at IS NULL)`.execute(tdb.db);
    expect(Number(earlier[0]?.n)).toBe(0);
  });
});

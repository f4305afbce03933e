import { type Insertable, type Kysely, sql, type Transaction } from 'kysely';
import type { Database, OutboxTable } from './schema.js';

/** One event to hand to the relay. */
export interface NewOutboxEvent {
  /** The event id; the relay sends it as `Nats-Msg-Id`. */
  readonly id: string;
  readonly aggregateType: string;
  readonly aggregateId: string;
  readonly eventType: string;
  readonly subject: string;
  readonly payload: Readonly<Record<string, unknown>>;
  /** Extra NATS headers (e.g. `traceparent`). */
  readonly headers?: Readonly<Record<string, string>>;
  readonly createdAt?: Date;
}

/**
 * Writes an event to the outbox inside the caller's transaction, so it commits or rolls back with
 * the business change. Takes a `Transaction`, never a plain `Kysely`, and checks at run time too:
 * an outbox write outside a transaction would reintroduce the lost-event bug the outbox exists to fix.
 */
export async function enqueueOutboxEvent(trx: Transaction<Database>, event: NewOutboxEvent): Promise<void> {
  if (!trx.isTransaction) throw new TypeError('enqueueOutboxEvent must be called inside a transaction');
  await trx.insertInto('outbox').values(outboxValues(event)).execute();
}

/** The row for an event, for callers that fold the outbox insert into their own single statement. */
export function outboxValues(event: NewOutboxEvent): Insertable<OutboxTable> {
  return {
    id: event.id,
    aggregate_type: event.aggregateType,
    aggregate_id: event.aggregateId,
    event_type: event.eventType,
    subject: event.subject,
    payload: JSON.stringify(event.payload),
    headers: JSON.stringify(event.headers ?? {}),
    ...(event.createdAt ? { created_at: event.createdAt } : {}),
  };
}

/** A row the relay took, with what it needs to publish it. */
export interface ClaimedEvent {
  readonly id: string;
  readonly seq: string;
  readonly subject: string;
  /** The payload exactly as stored (jsonb rendered as text): sent as is, never re-stringified. */
  readonly payload: string;
  readonly headers: Readonly<Record<string, string>>;
  /** `created_at` as epoch milliseconds (a number: no date parsing per row on the hot path). */
  readonly created_at_ms: number;
  readonly attempts: number;
  /** How many times a relay has taken this row, this claim included: above 1, it may be in the stream already. */
  readonly claims: number;
  /** How long ago (database clock) a relay first took the row: an earlier publish, if any, is younger. */
  readonly first_claim_age_ms: number;
}

/*
 * The claim: one statement that picks the oldest publishable rows with FOR UPDATE SKIP LOCKED and
 * leases them, so concurrent relays never take the same row at the same time.
 *
 * Why a short lease (claim and commit, publish outside any transaction, then mark) rather than
 * holding the row locks in a transaction across the publish:
 * - Holding locks recovers instantly from a crash (the aborted transaction frees the rows), but it
 *   keeps a transaction open for as long as NATS takes to answer: during an outage that is the whole
 *   publish timeout per batch, holding back vacuum on the hottest table and pinning a connection.
 * - A lease leaves a durable trace that a publish was attempted (`first_claimed_at`, `claims`). That
 *   is what lets a relay know, after a crash or a long database outage, that a row may already be in
 *   the stream, and how long ago; with held locks that knowledge dies with the transaction.
 * - The cost is one more UPDATE per batch (the claim writes the lease). After a crash the dead
 *   relay's rows come back at once all the same: each relay holds a session advisory lock while it
 *   runs, and a lease whose owner holds none is taken (`orphanedLeases`). Only when the owner's
 *   session outlives it (a host lost without closing its TCP connection) do they wait for the lease
 *   (RELAY_LEASE_MS, default 30 s). Rows whose publish failed for a connection reason are released
 *   at once.
 *
 * Measured on this 2-core machine (100,000-row backlog, batch 500, one process publishing each batch
 * pipelined and marking it with one UPDATE, loopback NATS, three alternating runs in one session):
 * lease 22,888 / 25,428 / 25,545 events/s, locks held across the publish 28,433 / 26,690 / 25,857.
 * Medians 25,428 vs 26,690: the lease costs about 5% of drain rate, which buys the crash-recovery
 * and dedup properties above.
 *
 * The partial index outbox_unpublished_idx (seq) WHERE published_at IS NULL AND dead_at IS NULL
 * makes the scan "oldest first" walk only the backlog; rows leased by other relays are filtered on
 * the way and locked ones skipped. RETURNING has no order, so the caller sorts by seq.
 */
/**
 * First key of the session advisory lock each relay holds while it runs (the second is
 * `hashtext(relay id)`): a lease whose owner holds no such lock belongs to a dead relay.
 */
export const RELAY_PRESENCE_LOCK = 1_869_968_482; // 'outb'

export interface ClaimOptions {
  readonly limit: number;
  readonly leaseMs: number;
  readonly relayId: string;
  /**
   * Also take rows whose lease has not expired when the relay that holds it is gone: no session holds
   * its presence lock ({@link RELAY_PRESENCE_LOCK}). A SIGKILLed relay's rows then come back at once
   * instead of after the lease. Only for relays that hold their own presence lock while claiming.
   */
  readonly orphanedLeases?: boolean;
  /**
   * Take a row only when no earlier row of its aggregate is still waiting (unpublished and not dead,
   * leased or not). A batch then holds at most one row per aggregate, and the next one of that
   * aggregate becomes claimable only once this one is marked: per-aggregate commit order in the
   * stream, whatever the number of relays. A dead row stops holding back the rows after it.
   */
  readonly perAggregateOrder?: boolean;
}

/**
 * The claim statement itself, unexecuted: what {@link claimOutboxBatch} runs, and what a test can
 * EXPLAIN.
 *
 * The per-aggregate check must stay one probe of outbox_pending_aggregate_idx per candidate row,
 * whatever the planner believes about the outbox. The belief that hurts is "nothing is waiting":
 * statistics gathered while the outbox was drained, then a backlog built up (a NATS outage). Then
 * every plan looks free, and as a plain NOT EXISTS the planner chose a nested-loop anti-join that
 * walked the whole backlog once per candidate; as a SubPlan it chose outbox_unpublished_idx and
 * walked every waiting row ahead of the candidate. Measured here behind such statistics, per 500-row
 * claim: 1,620 ms as the anti-join with 20,000 rows waiting, 4 ms as probes with 100,000 waiting; CI
 * saw three relays drain 10,000 rows at 343 events/s. So the check leaves the planner no choice:
 * - the rows of the aggregate are read in a derived table with `OFFSET 0`, a fence: PostgreSQL
 *   neither flattens it into a join nor pushes the `dead_at IS NULL` test down into it;
 * - inside the fence the conditions are `published_at IS NULL` plus the aggregate and seq, which
 *   imply the predicate of outbox_pending_aggregate_idx (migration 0010) and not that of
 *   outbox_unpublished_idx (which also requires dead_at IS NULL), so only the probe can answer it.
 * packages/db/test/claim-plan.int.test.ts counts the rows each plan node handles under such statistics.
 */
export function claimOutboxBatchQuery(options: ClaimOptions) {
  const ordered = options.perAggregateOrder
    ? sql`AND NOT EXISTS (
          SELECT 1 FROM (
            SELECT earlier.dead_at FROM outbox AS earlier
            WHERE earlier.aggregate_type = o.aggregate_type AND earlier.aggregate_id = o.aggregate_id
              AND earlier.seq < o.seq AND earlier.published_at IS NULL
            OFFSET 0) AS waiting
          WHERE waiting.dead_at IS NULL)`
    : sql``;
  // One read of the lock table per claim (an uncorrelated, hashed subplan), used only for rows
  // whose lease has not expired.
  const orphaned = options.orphanedLeases
    ? sql`OR hashtext(locked_by)::oid NOT IN (
            SELECT objid FROM pg_locks
            WHERE locktype = 'advisory' AND classid = ${RELAY_PRESENCE_LOCK}::oid AND objsubid = 2 AND granted)`
    : sql``;
  return sql<ClaimedEvent>`
    WITH next AS (
      SELECT id FROM outbox AS o
      WHERE published_at IS NULL AND dead_at IS NULL
        AND (locked_until IS NULL OR locked_until < now() ${orphaned})
        ${ordered}
      ORDER BY seq
      LIMIT ${options.limit}
      FOR UPDATE SKIP LOCKED
    )
    UPDATE outbox AS o
    SET locked_until = now() + make_interval(secs => ${options.leaseMs / 1000}),
        locked_by = ${options.relayId},
        first_claimed_at = coalesce(o.first_claimed_at, now()),
        claims = o.claims + 1
    FROM next
    WHERE o.id = next.id
    RETURNING o.id, o.seq, o.subject, o.payload::text AS payload, o.headers,
              (extract(epoch FROM o.created_at) * 1000)::float8 AS created_at_ms, o.attempts, o.claims,
              (extract(epoch FROM now() - o.first_claimed_at) * 1000)::float8 AS first_claim_age_ms`;
}

export async function claimOutboxBatch(db: Kysely<Database>, options: ClaimOptions): Promise<ClaimedEvent[]> {
  const { rows } = await claimOutboxBatchQuery(options).execute(db);
  return rows.sort((a, b) => (BigInt(a.seq) < BigInt(b.seq) ? -1 : 1));
}

/** Marks rows published (after their PubAck). Idempotent: a row marked by someone else stays as it is. */
export async function markOutboxPublished(db: Kysely<Database>, ids: readonly string[]): Promise<number> {
  if (ids.length === 0) return 0;
  const result = await sql`
    UPDATE outbox SET published_at = now(), locked_until = NULL, locked_by = NULL
    WHERE id = ANY(${ids}::uuid[]) AND published_at IS NULL`.execute(db);
  return Number(result.numAffectedRows ?? 0);
}

/** Gives rows back to the claim path at once, without counting an attempt (a NATS outage is not the row's fault). */
export async function releaseOutboxClaims(
  db: Kysely<Database>,
  ids: readonly string[],
  relayId: string,
): Promise<void> {
  if (ids.length === 0) return;
  await sql`
    UPDATE outbox SET locked_until = NULL, locked_by = NULL
    WHERE id = ANY(${ids}::uuid[]) AND locked_by = ${relayId} AND published_at IS NULL`.execute(db);
}

/** One failure tied to the row itself (too large, no stream for its subject, bad header, ...). */
export interface RowFailure {
  readonly id: string;
  readonly error: string;
}

/**
 * Counts a failed attempt against each row and records its error. A row that reaches `maxAttempts`
 * is marked dead and leaves the claim path; the others are leased for `retryDelayMs × 2^attempts`
 * (capped at 5 minutes) so they retry later without holding up the rows behind them.
 */
export async function recordOutboxFailures(
  db: Kysely<Database>,
  failures: readonly RowFailure[],
  options: { readonly maxAttempts: number; readonly retryDelayMs: number },
): Promise<{ id: string; attempts: number; dead: boolean }[]> {
  if (failures.length === 0) return [];
  const { rows } = await sql<{ id: string; attempts: number; dead: boolean }>`
    UPDATE outbox AS o
    SET attempts = o.attempts + 1,
        last_error = left(f.error, 2000),
        locked_by = NULL,
        locked_until = now() + make_interval(secs => least(300, ${options.retryDelayMs / 1000} * power(2, o.attempts))),
        dead_at = CASE WHEN o.attempts + 1 >= ${options.maxAttempts} THEN now() END
    FROM unnest(${failures.map((f) => f.id)}::uuid[], ${failures.map((f) => f.error)}::text[]) AS f(id, error)
    WHERE o.id = f.id AND o.published_at IS NULL
    RETURNING o.id, o.attempts, o.dead_at IS NOT NULL AS dead`.execute(db);
  return rows;
}

/** The backlog the relay still has to publish: size and age of its oldest row. */
export async function outboxBacklog(
  db: Kysely<Database>,
): Promise<{ pending: number; oldestAgeSeconds: number; dead: number }> {
  const { rows } = await sql<{ pending: number; oldest_age: number | null; dead: number }>`
    SELECT
      (SELECT count(*)::int FROM outbox WHERE published_at IS NULL AND dead_at IS NULL) AS pending,
      (SELECT extract(epoch FROM now() - created_at)::float8 FROM outbox
        WHERE published_at IS NULL AND dead_at IS NULL ORDER BY seq LIMIT 1) AS oldest_age,
      (SELECT count(*)::int FROM outbox WHERE dead_at IS NOT NULL) AS dead`.execute(db);
  const row = rows[0];
  return {
    pending: row?.pending ?? 0,
    oldestAgeSeconds: Math.max(0, row?.oldest_age ?? 0),
    dead: row?.dead ?? 0,
  };
}

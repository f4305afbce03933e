import { type Kysely, sql } from 'kysely';
import { LOG_START, type LogPosition } from './outbox-log.js';
import type { Database } from './schema.js';

/**
 * First key of the session advisory lock each relay holds while it runs (the second is
 * `hashtext(relay id)`): a partition whose owner holds no such lock belongs to a dead relay and is
 * taken over at once, without waiting for its lease.
 */
export const RELAY_PRESENCE_LOCK = 1_869_968_482; // 'outb'

/** A partition a relay holds, with its cursor as last written. */
export interface HeldPartition {
  readonly partition: number;
  /** Changes with every change of owner; a cursor write names it and is refused once it changed. */
  readonly epoch: string;
  readonly acked: LogPosition;
  /** How far a relay may have published beyond `acked` (null: nothing beyond it). */
  readonly reach: LogPosition | null;
  /** When the earliest publish beyond `acked` was sent (epoch ms). */
  readonly reachAtMs: number | null;
}

export interface PartitionClaim {
  /** Partitions this relay holds from now on. */
  readonly held: readonly number[];
  /** Those it did not know it held (at their current epoch), with their cursor as last written. */
  readonly acquired: readonly HeldPartition[];
}

/*
 * Relays share the partitions through FOR UPDATE SKIP LOCKED on outbox_partitions. In one statement a
 * relay keeps its own partitions and takes every free one: unowned, past its lease, or held by a relay
 * that is gone (no session of this database holds its presence lock). A relay never waits for
 * another's row lock; a partition another relay is taking right now is left to it. When another live
 * relay holds less than its share (partitions / live relays, rounded down), for instance one that has
 * just started, a relay keeps only its own share (rounded up) and gives the rest back for it to take.
 * Free partitions are taken whatever the shares, so a partition is never left unread because the
 * relay whose share it would be cannot publish (NATS down): at worst it moves back and forth.
 * Held partitions are renewed once a third of the lease has passed, so the table sees a few writes per
 * lease and stays small behind an old snapshot.
 *
 * Why hold partitions with a lease and not a transaction open across the publish: a transaction
 * holding the row locks would keep an xid in every snapshot's in-progress list and hold back vacuum
 * for as long as NATS takes to answer (all of an outage), and the "how far may it have published"
 * record must be committed before the publish, so it cannot live in that transaction.
 */
export async function claimPartitions(
  db: Kysely<Database>,
  options: {
    readonly relayId: string;
    readonly leaseMs: number;
    /**
     * The partitions the caller reads now, with their epochs. Every other partition it comes out
     * holding is returned in `acquired`, including one the database already listed as the caller's:
     * a claim that committed but whose answer was lost (the connection cut in between) leaves such
     * partitions, and a relay that only loaded partitions new to the database never read them while
     * it renewed their lease (a PostgreSQL outage test caught it).
     */
    readonly known: ReadonlyMap<number, string>;
  },
): Promise<PartitionClaim> {
  const lease = options.leaseMs / 1000;
  const me = options.relayId;
  const { rows } = await sql<{ partition: number; epoch: string }>`
    WITH alive AS (
      SELECT DISTINCT objid FROM pg_locks
      WHERE locktype = 'advisory' AND classid = ${RELAY_PRESENCE_LOCK}::oid AND objsubid = 2 AND granted
        AND database = (SELECT oid FROM pg_database WHERE datname = current_database())
    ), holdings AS (
      SELECT a.objid, count(p.partition) AS n FROM alive AS a
      LEFT JOIN outbox_partitions AS p ON p.lease_until > now() AND hashtext(p.owner)::oid = a.objid
      GROUP BY a.objid
    ), sizes AS (
      SELECT (SELECT count(*) FROM outbox_partitions) AS total, greatest((SELECT count(*) FROM alive), 1) AS live
    ), keep AS (
      SELECT CASE WHEN EXISTS (
               SELECT 1 FROM holdings AS h, sizes
               WHERE h.objid <> hashtext(${me})::oid AND h.n < floor(sizes.total::numeric / sizes.live))
             THEN ceil(sizes.total::numeric / sizes.live) ELSE sizes.total END::int AS n
      FROM sizes
    ), candidates AS (
      SELECT p.partition, p.owner, p.lease_until FROM outbox_partitions AS p
      WHERE p.owner = ${me} OR p.owner IS NULL OR p.lease_until < now()
         OR hashtext(p.owner)::oid NOT IN (SELECT objid FROM alive)
      ORDER BY (p.owner IS NOT DISTINCT FROM ${me}) DESC, p.partition
      LIMIT (SELECT n FROM keep)
      FOR UPDATE OF p SKIP LOCKED
    ), taken AS (
      UPDATE outbox_partitions AS p
      SET owner = ${me}, lease_until = now() + make_interval(secs => ${lease}),
          epoch = CASE WHEN c.owner IS DISTINCT FROM ${me} THEN p.epoch + 1 ELSE p.epoch END
      FROM candidates AS c
      WHERE p.partition = c.partition
        AND (c.owner IS DISTINCT FROM ${me} OR c.lease_until < now() + make_interval(secs => ${(lease * 2) / 3}))
      RETURNING p.partition, p.epoch
    ), released AS (
      UPDATE outbox_partitions AS p SET owner = NULL, lease_until = NULL, epoch = p.epoch + 1
      WHERE p.owner = ${me} AND p.partition NOT IN (SELECT partition FROM candidates)
    )
    SELECT c.partition, coalesce(t.epoch, p.epoch)::text AS epoch
    FROM candidates AS c
    JOIN outbox_partitions AS p USING (partition)
    LEFT JOIN taken AS t USING (partition)
    ORDER BY c.partition`.execute(db);
  const acquired = rows.filter((r) => options.known.get(r.partition) !== r.epoch);
  return {
    held: rows.map((r) => r.partition),
    acquired: await loadCursors(
      db,
      acquired.map((r) => ({ partition: r.partition, epoch: r.epoch })),
    ),
  };
}

/** The latest cursor record of each partition, for a relay that has just taken them. */
async function loadCursors(
  db: Kysely<Database>,
  partitions: readonly { readonly partition: number; readonly epoch: string }[],
): Promise<HeldPartition[]> {
  if (partitions.length === 0) return [];
  const { rows } = await sql<{
    partition: number;
    acked_snapshot: string | null;
    acked_target: string | null;
    acked_after_xid: string | null;
    acked_after_seq: string | null;
    reach_snapshot: string | null;
    reach_target: string | null;
    reach_after_xid: string | null;
    reach_after_seq: string | null;
    reach_at_ms: number | null;
  }>`
    SELECT partition, acked_snapshot::text, acked_target::text, acked_after_xid::text, acked_after_seq::text,
           reach_snapshot::text, reach_target::text, reach_after_xid::text, reach_after_seq::text,
           (extract(epoch FROM reach_at) * 1000)::float8 AS reach_at_ms
    FROM outbox_cursor WHERE partition = ANY(${partitions.map((p) => p.partition)}::int[])`.execute(db);
  const epochs = new Map(partitions.map((p) => [p.partition, p.epoch]));
  return rows.map((r) => ({
    partition: r.partition,
    epoch: epochs.get(r.partition) ?? '0',
    acked: {
      snapshot: r.acked_snapshot ?? LOG_START.snapshot,
      target: r.acked_target,
      afterXid: r.acked_after_xid,
      afterSeq: r.acked_after_seq,
    },
    reach:
      r.reach_snapshot === null
        ? null
        : {
            snapshot: r.reach_snapshot,
            target: r.reach_target,
            afterXid: r.reach_after_xid,
            afterSeq: r.reach_after_seq,
          },
    reachAtMs: r.reach_at_ms,
  }));
}

/** One partition's cursor as a relay writes it: see outbox_cursors in migration 0012. */
export interface CursorWrite {
  readonly partition: number;
  readonly epoch: string;
  readonly acked: LogPosition;
  readonly reach: LogPosition | null;
  /** Epoch ms of the earliest publish beyond `acked`, or null to use the database's now(). */
  readonly reachAtMs: number | null;
}

/**
 * Appends a cursor record for each partition this relay still holds (owner and epoch unchanged),
 * in one statement; returns the partitions written. A partition left out was taken by another relay:
 * stop publishing it. The partition row is locked FOR SHARE while the record is written, so a relay
 * taking the partition over (FOR UPDATE SKIP LOCKED) either sees this record or makes it fail.
 */
export async function writeCursors(
  db: Kysely<Database>,
  relayId: string,
  writes: readonly CursorWrite[],
): Promise<Set<number>> {
  if (writes.length === 0) return new Set();
  const col = <T>(f: (w: CursorWrite) => T) => writes.map(f);
  const { rows } = await sql<{ partition: number }>`
    INSERT INTO outbox_cursors (partition, acked_snapshot, acked_target, acked_after_xid, acked_after_seq,
                                reach_snapshot, reach_target, reach_after_xid, reach_after_seq, reach_at, written_by)
    SELECT w.partition, w.acked_snapshot::pg_snapshot, w.acked_target::pg_snapshot, w.acked_after_xid::xid8,
           w.acked_after_seq, w.reach_snapshot::pg_snapshot, w.reach_target::pg_snapshot, w.reach_after_xid::xid8,
           w.reach_after_seq,
           CASE WHEN w.reach_snapshot IS NULL THEN NULL
                ELSE coalesce(to_timestamp(w.reach_at_ms / 1000.0), now()) END,
           ${relayId}
    FROM unnest(${col((w) => w.partition)}::int[], ${col((w) => w.epoch)}::bigint[],
                ${col((w) => w.acked.snapshot)}::text[], ${col((w) => w.acked.target)}::text[],
                ${col((w) => w.acked.afterXid)}::text[], ${col((w) => w.acked.afterSeq)}::bigint[],
                ${col((w) => w.reach?.snapshot ?? null)}::text[], ${col((w) => w.reach?.target ?? null)}::text[],
                ${col((w) => w.reach?.afterXid ?? null)}::text[], ${col((w) => w.reach?.afterSeq ?? null)}::bigint[],
                ${col((w) => w.reachAtMs)}::float8[])
      AS w(partition, epoch, acked_snapshot, acked_target, acked_after_xid, acked_after_seq,
           reach_snapshot, reach_target, reach_after_xid, reach_after_seq, reach_at_ms)
    JOIN outbox_partitions AS p ON p.partition = w.partition AND p.owner = ${relayId} AND p.epoch = w.epoch
    FOR SHARE OF p
    RETURNING partition`.execute(db);
  return new Set(rows.map((r) => r.partition));
}

/** Lets go of every partition this relay holds (a relay stopping), so others take them at once. */
export async function releasePartitions(db: Kysely<Database>, relayId: string): Promise<void> {
  await sql`
    UPDATE outbox_partitions SET owner = NULL, lease_until = NULL, epoch = epoch + 1
    WHERE owner = ${relayId}`.execute(db);
}

/** One failure tied to the row itself (too large, no stream for its subject, bad header, ...). */
export interface RowFailure {
  readonly id: string;
  readonly error: string;
}

/**
 * Counts a failed attempt against each row. A row that reaches `maxAttempts` leaves the log for
 * outbox_dead (same id, the error kept) in the same transaction, so the partition's cursor moves on.
 */
export async function recordOutboxFailures(
  db: Kysely<Database>,
  failures: readonly RowFailure[],
  maxAttempts: number,
): Promise<{ id: string; attempts: number; dead: boolean }[]> {
  if (failures.length === 0) return [];
  return db.transaction().execute(async (trx) => {
    const { rows } = await sql<{ id: string; attempts: number }>`
      INSERT INTO outbox_failures AS f (id, attempts, last_error)
      SELECT u.id, 1, left(u.error, 2000)
      FROM unnest(${failures.map((f) => f.id)}::uuid[], ${failures.map((f) => f.error)}::text[]) AS u(id, error)
      ON CONFLICT (id) DO UPDATE
        SET attempts = f.attempts + 1, last_error = excluded.last_error, last_failed_at = now()
      RETURNING f.id, f.attempts`.execute(trx);
    const dead = rows.filter((r) => r.attempts >= maxAttempts).map((r) => r.id);
    if (dead.length > 0) {
      await sql`
        WITH gone AS (DELETE FROM outbox WHERE id = ANY(${dead}::uuid[]) RETURNING *),
             failed AS (DELETE FROM outbox_failures WHERE id = ANY(${dead}::uuid[]) RETURNING *)
        INSERT INTO outbox_dead (id, aggregate_type, aggregate_id, event_type, subject, payload, headers,
                                 created_at, attempts, last_error)
        SELECT g.id, g.aggregate_type, g.aggregate_id, g.event_type, g.subject, g.payload, g.headers,
               g.created_at, f.attempts, f.last_error
        FROM gone AS g JOIN failed AS f USING (id)`.execute(trx);
    }
    const deadSet = new Set(dead);
    return rows.map((r) => ({ id: r.id, attempts: r.attempts, dead: deadSet.has(r.id) }));
  });
}

/** A published row's failure count is history: drop it (rare: only rows that failed before). */
export async function clearOutboxFailures(db: Kysely<Database>, ids: readonly string[]): Promise<void> {
  if (ids.length === 0) return;
  await sql`DELETE FROM outbox_failures WHERE id = ANY(${ids}::uuid[])`.execute(db);
}

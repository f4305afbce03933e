import { type Kysely, sql } from 'kysely';
import type { Database } from './schema.js';

// Operator queries on the outbox, used by `relay status|replay|requeue-dead|prune` and by the relay's
// own retention. None of them is on the publish path.

export interface OutboxStatus {
  /** Rows waiting to be published (not dead). */
  readonly pending: number;
  /** Rows set aside after RELAY_MAX_ATTEMPTS failures. */
  readonly dead: number;
  readonly published: number;
  /** Age of the oldest pending row, in seconds (0 when nothing is pending). */
  readonly oldestPendingAgeSeconds: number;
  /** When the most recent publish was marked, if any row was ever published. */
  readonly lastPublishedAt: Date | null;
  /** Rows currently leased by a relay (being published now, or by a relay that died). */
  readonly leased: number;
}

export async function outboxStatus(db: Kysely<Database>): Promise<OutboxStatus> {
  const { rows } = await sql<{
    pending: number;
    dead: number;
    published: string;
    oldest_age: number | null;
    last_published_at: Date | null;
    leased: number;
  }>`
    SELECT
      (SELECT count(*)::int FROM outbox WHERE published_at IS NULL AND dead_at IS NULL) AS pending,
      (SELECT count(*)::int FROM outbox WHERE dead_at IS NOT NULL) AS dead,
      (SELECT count(*) FROM outbox WHERE published_at IS NOT NULL) AS published,
      (SELECT extract(epoch FROM now() - created_at)::float8 FROM outbox
        WHERE published_at IS NULL AND dead_at IS NULL ORDER BY seq LIMIT 1) AS oldest_age,
      (SELECT max(published_at) FROM outbox) AS last_published_at,
      (SELECT count(*)::int FROM outbox
        WHERE published_at IS NULL AND dead_at IS NULL AND locked_until > now()) AS leased`.execute(db);
  const row = rows[0];
  return {
    pending: row?.pending ?? 0,
    dead: row?.dead ?? 0,
    published: Number(row?.published ?? 0),
    oldestPendingAgeSeconds: Math.max(0, row?.oldest_age ?? 0),
    lastPublishedAt: row?.last_published_at ?? null,
    leased: row?.leased ?? 0,
  };
}

/**
 * Puts dead rows back on the claim path: attempts start again from 0, the last error is kept for the
 * record. With ids, only those rows (dead ones; others are left alone). Returns the ids requeued.
 */
export async function requeueDeadRows(db: Kysely<Database>, ids?: readonly string[]): Promise<string[]> {
  const filter = ids === undefined ? sql`` : sql`AND id = ANY(${ids}::uuid[])`;
  const { rows } = await sql<{ id: string }>`
    UPDATE outbox
    SET dead_at = NULL, attempts = 0, locked_until = NULL, locked_by = NULL
    WHERE dead_at IS NOT NULL AND published_at IS NULL ${filter}
    RETURNING id`.execute(db);
  return rows.map((r) => r.id);
}

/**
 * Deletes up to `batchSize` published rows created before `before`, in one short transaction that skips
 * rows another session holds. Unpublished and dead rows are never touched. Returns how many it deleted;
 * call it until it returns less than `batchSize`.
 */
export async function pruneOutboxBatch(
  db: Kysely<Database>,
  before: Date,
  batchSize: number,
): Promise<number> {
  const result = await sql`
    DELETE FROM outbox
    WHERE id IN (
      SELECT id FROM outbox
      WHERE created_at < ${before} AND published_at IS NOT NULL
      LIMIT ${batchSize}
      FOR UPDATE SKIP LOCKED)`.execute(db);
  return Number(result.numAffectedRows ?? 0);
}

/** Deletes published rows created before `before`, batch by batch, until none is left or `signal` aborts. */
export async function pruneOutbox(
  db: Kysely<Database>,
  before: Date,
  options: {
    readonly batchSize?: number;
    readonly pauseMs?: number;
    readonly signal?: AbortSignal;
    readonly onBatch?: (deleted: number, total: number) => void;
  } = {},
): Promise<number> {
  const batchSize = options.batchSize ?? 2000;
  let total = 0;
  for (;;) {
    if (options.signal?.aborted) return total;
    const deleted = await pruneOutboxBatch(db, before, batchSize);
    total += deleted;
    if (deleted > 0) options.onBatch?.(deleted, total);
    if (deleted < batchSize) return total;
    // A breath between batches: other writers and vacuum get the table, the WAL does not spike.
    if (options.pauseMs) await new Promise((r) => setTimeout(r, options.pauseMs));
  }
}

// ---------------------------------------------------------------------------------------------- replay

/** What identifies a replay across runs: the stream and the options as the operator typed them. */
export interface ReplayRequest {
  readonly stream: string;
  readonly request: string;
}

export interface ReplayCheckpoint {
  readonly id: string;
  readonly since: Date;
  readonly until: Date;
  readonly eventType: string | null;
  readonly total: number;
  readonly sent: number;
  readonly lastSeq: string;
  readonly startedAt: Date;
  /** True when this run picked up an interrupted replay of the same range. */
  readonly resumed: boolean;
}

export interface ReplayRow {
  readonly id: string;
  readonly seq: string;
  readonly subject: string;
  readonly payload: string;
  readonly headers: Readonly<Record<string, string>>;
  readonly published_at: Date;
}

const replayFilter = (range: { since: Date; until: Date; eventType: string | null }) => sql`
  published_at IS NOT NULL AND created_at >= ${range.since} AND created_at < ${range.until}
  ${range.eventType === null ? sql`` : sql`AND event_type = ${range.eventType}`}`;

/** How many events a replay of the range would send, and how many of them were published before `cutoff`. */
export async function countReplay(
  db: Kysely<Database>,
  range: { since: Date; until: Date; eventType: string | null },
  cutoff: Date,
): Promise<{ total: number; olderThanCutoff: number }> {
  const { rows } = await sql<{ total: number; older: number }>`
    SELECT count(*)::int AS total, count(*) FILTER (WHERE published_at < ${cutoff})::int AS older
    FROM outbox WHERE ${replayFilter(range)}`.execute(db);
  return { total: rows[0]?.total ?? 0, olderThanCutoff: rows[0]?.older ?? 0 };
}

/** The unfinished replay of the same request, if an earlier run was interrupted. */
export async function findUnfinishedReplay(
  db: Kysely<Database>,
  request: ReplayRequest,
): Promise<ReplayCheckpoint | undefined> {
  const { rows } = await sql<CheckpointRow>`
    SELECT id, since, until, event_type, total, sent, last_seq, started_at FROM outbox_replays
    WHERE finished_at IS NULL AND stream = ${request.stream} AND request = ${request.request}`.execute(db);
  const row = rows[0];
  return row ? checkpoint(row, true) : undefined;
}

/** Starts recording a new replay of the range (its bounds and total fixed now). */
export async function startReplay(
  db: Kysely<Database>,
  replay: ReplayRequest & { since: Date; until: Date; eventType: string | null },
  total: number,
): Promise<ReplayCheckpoint> {
  const { rows } = await sql<CheckpointRow>`
    INSERT INTO outbox_replays (stream, request, since, until, event_type, total)
    VALUES (${replay.stream}, ${replay.request}, ${replay.since}, ${replay.until}, ${replay.eventType}, ${total})
    RETURNING id, since, until, event_type, total, sent, last_seq, started_at`.execute(db);
  const row = rows[0];
  if (!row) throw new Error('could not record the replay');
  return checkpoint(row, false);
}

/** The next rows of the replay after `afterSeq`, in creation order. */
export async function nextReplayRows(
  db: Kysely<Database>,
  replay: ReplayCheckpoint,
  afterSeq: string,
  limit: number,
): Promise<ReplayRow[]> {
  const { rows } = await sql<ReplayRow>`
    SELECT id, seq, subject, payload::text AS payload, headers, published_at FROM outbox
    WHERE ${replayFilter(replay)} AND seq > ${afterSeq}
    ORDER BY seq
    LIMIT ${limit}`.execute(db);
  return rows;
}

/** Records progress after a chunk was acknowledged by the stream; `finished` closes the replay. */
export async function checkpointReplay(
  db: Kysely<Database>,
  id: string,
  progress: { sent: number; lastSeq: string; finished: boolean },
): Promise<void> {
  await sql`
    UPDATE outbox_replays
    SET sent = ${progress.sent}, last_seq = ${progress.lastSeq}, updated_at = now(),
        finished_at = ${progress.finished ? sql`now()` : sql`NULL`}
    WHERE id = ${id}`.execute(db);
}

interface CheckpointRow {
  id: string;
  since: Date;
  until: Date;
  event_type: string | null;
  total: number;
  sent: number;
  last_seq: string;
  started_at: Date;
}

function checkpoint(row: CheckpointRow, resumed: boolean): ReplayCheckpoint {
  return {
    id: String(row.id),
    since: row.since,
    until: row.until,
    eventType: row.event_type,
    total: row.total,
    sent: row.sent,
    lastSeq: String(row.last_seq),
    startedAt: row.started_at,
    resumed,
  };
}

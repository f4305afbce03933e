import { type Db, poolOf } from './database.js';

/**
 * A position in one partition's log (migration 0012): every row whose transaction is visible in
 * `snapshot` has been read, and of the rows whose transaction became visible between `snapshot` and
 * `target`, those up to (`afterXid`, `afterSeq`) in (xid, seq) order. Snapshots are `pg_snapshot`
 * text (`xmin:xmax:xip,...`), passed back to PostgreSQL as they came: nothing here parses them.
 */
export interface LogPosition {
  readonly snapshot: string;
  readonly target: string | null;
  readonly afterXid: string | null;
  readonly afterSeq: string | null;
}

/** The position where nothing has been read: every row of the partition is ahead. */
export const LOG_START: LogPosition = { snapshot: '1:1:', target: null, afterXid: null, afterSeq: null };

/** A row read from the log, with what the relay needs to publish it. */
export interface LogEvent {
  readonly id: string;
  readonly xid: string;
  readonly seq: string;
  readonly subject: string;
  /** The payload exactly as stored: sent as is, never re-stringified. */
  readonly payload: string;
  /** The extra NATS headers as stored (a JSON object of strings). */
  readonly headers: string;
  /** `created_at` as epoch milliseconds. */
  readonly createdAtMs: number;
  /** Covered by the `reach` passed to the read: a relay may have published it already. */
  readonly uncertain: boolean;
}

export interface PartitionReadRequest {
  readonly partition: number;
  readonly from: LogPosition;
  /** How far a relay may have published: rows it covers come back `uncertain`. */
  readonly reach?: LogPosition | null;
}

export interface PartitionRead {
  readonly partition: number;
  /** The rows, in the partition's log order. */
  readonly events: LogEvent[];
  /** Where the next read of this partition starts once these rows are acknowledged. */
  readonly next: LogPosition;
}

/*
 * The read: for each partition, the rows whose transaction committed after the partition's snapshot,
 * in (xid, seq) order, at most `limit`. Nothing is written. The target snapshot (`pg_current_snapshot()`,
 * the statement's own, so the rows the statement sees are exactly those of the transactions visible in
 * it) is fixed when a window starts and kept until the window is read to its end, so a window read in
 * several batches is one fixed set of rows in one fixed order.
 *
 * Strategies, machine CPU per event on this project's 2-core machine (100,000 rows, batch 500):
 * - lease and mark (the relay until migration 0012: a claim UPDATE with a lease, then a mark UPDATE
 *   per batch): 65.6 µs for the database half alone, two dead tuples per event, and behind an old
 *   snapshot a claim that walks them (README, 2026-11-26 run);
 * - a minimal lease and mark (one CTE, one `= ANY` mark, no ordering probe): 25-30 µs, still two
 *   writes per event (issue 16's prototype);
 * - `xid < pg_snapshot_xmin(pg_current_snapshot())`, as emmett does: one cheap range, but xids are
 *   cluster-wide, so any long write transaction on the server, in any database, stops all delivery;
 * - one query across all partitions ordered by (xid, seq): sorts the whole range each batch, 142 µs
 *   (issue 16's prototype);
 * - logical decoding: exact commit order and no table reads, but `wal_level=logical` (a restart the
 *   start command cannot do, not on every managed server) and a slot that keeps WAL while readers
 *   are down;
 * - this statement, per partition in index order, payload and headers sent as text: 21.7 µs for the
 *   database half, client decoding included (`pnpm bench --only budget`, 2026-12-01; 19.5 µs on a
 *   quiet machine, 2026-12-02), at least half of it the client decoding every field to a string;
 * - the same rows aggregated into one text per partition (string_agg), to decode one field instead of
 *   ten per row: the planner chose a slow plan for it, dropped; results in binary format: pg-protocol
 *   1.16 decodes every field as text whatever the format asked for; this statement as
 *   `COPY (...) TO STDOUT (FORMAT binary)` (pg-copy-streams, payload kept as bytes): client CPU 4.4-4.7
 *   against 5.1-6.3 µs per row at batch 2,000, wall time no better (2026-12-02 prototype), not adopted.
 *
 * Two index walks per partition, on outbox_log_idx (partition, xid, seq), each as long as the batch:
 * - the transactions that were in progress at the cursor's snapshot (its xip list), one probe each,
 *   forced by the LATERAL join: this is what lets a long transaction delay only its own rows. A plain
 *   `xid = ANY(xip)` became a filter over the whole partition, and `xid >= xmin` walks every row
 *   written since the long transaction began (PgQ reads the same two parts);
 * - the transactions that started after it, from max(snapshot's xmax, the position) onwards.
 * Visibility in the target is a filter on rows the walk returns anyway; an explicit upper bound
 * `xid < xmax(target)` made the planner estimate a few rows and choose a bitmap scan and a sort of
 * the whole backlog (measured on 100,000 rows: 150 ms against 1.5 ms for 16 partitions x 32 rows).
 * The candidate set `c` is fenced (OFFSET 0) so each snapshot is parsed once per partition, not per row.
 * packages/db/test/log-plan.int.test.ts counts the rows each plan node handles.
 */
export const READ_LOG_SQL = `
  SELECT c.partition, c.target::text AS target, r.id, r.xid::text AS xid, r.seq::text AS seq, r.subject,
         r.payload, r.headers, (extract(epoch FROM r.created_at) * 1000)::float8 AS created_at_ms,
         outbox_position_covers(r.xid, r.seq, c.reach_snapshot, c.reach_target, c.reach_after_xid, c.reach_after_seq)
           AS uncertain
  FROM (
    SELECT s.*,
           CASE WHEN s.after_xid >= pg_snapshot_xmax(s.snapshot) THEN s.after_xid ELSE pg_snapshot_xmax(s.snapshot) END
             AS from_xid,
           CASE WHEN s.after_xid >= pg_snapshot_xmax(s.snapshot) THEN s.after_seq ELSE 0 END AS from_seq
    FROM (
      SELECT u.partition, u.snapshot::pg_snapshot AS snapshot,
             coalesce(u.target::pg_snapshot, pg_current_snapshot()) AS target,
             coalesce(u.after_xid::xid8, '0'::xid8) AS after_xid, coalesce(u.after_seq, 0) AS after_seq,
             u.reach_snapshot::pg_snapshot AS reach_snapshot, u.reach_target::pg_snapshot AS reach_target,
             u.reach_after_xid::xid8 AS reach_after_xid, u.reach_after_seq AS reach_after_seq
      FROM unnest($1::int[], $2::text[], $3::text[], $4::text[], $5::bigint[], $6::text[], $7::text[], $8::text[], $9::bigint[])
        AS u(partition, snapshot, target, after_xid, after_seq, reach_snapshot, reach_target, reach_after_xid, reach_after_seq)
      OFFSET 0
    ) AS s
    OFFSET 0
  ) AS c
  LEFT JOIN LATERAL (
    SELECT * FROM (
      (SELECT t.* FROM pg_snapshot_xip(c.snapshot) AS x(xid)
       CROSS JOIN LATERAL (
         SELECT o.id, o.xid, o.seq, o.subject, o.payload::text AS payload, o.headers::text AS headers, o.created_at
         FROM outbox AS o
         WHERE o.partition = c.partition AND o.xid = x.xid
           AND o.seq > CASE WHEN x.xid = c.after_xid THEN c.after_seq ELSE 0 END
         ORDER BY o.seq LIMIT $10) AS t
       WHERE x.xid >= c.after_xid AND pg_visible_in_snapshot(x.xid, c.target)
       ORDER BY t.xid, t.seq LIMIT $10)
      UNION ALL
      (SELECT o.id, o.xid, o.seq, o.subject, o.payload::text, o.headers::text, o.created_at
       FROM outbox AS o
       WHERE o.partition = c.partition AND (o.xid, o.seq) > (c.from_xid, c.from_seq)
         AND pg_visible_in_snapshot(o.xid, c.target)
       ORDER BY o.xid, o.seq LIMIT $10)
    ) AS parts ORDER BY xid, seq LIMIT $10
  ) AS r ON true`;

type ReadRow = [
  partition: number,
  target: string,
  id: string | null,
  xid: string,
  seq: string,
  subject: string,
  payload: string,
  headers: string,
  createdAtMs: number,
  uncertain: boolean | null,
];

/**
 * Reads the next rows of each partition from its position, at most `limit` per partition, in one
 * statement (a named prepared statement, rows as arrays: nothing per row but the values). Every
 * requested partition comes back, with no events when nothing committed past its position.
 */
export async function readOutboxLog(
  db: Db,
  requests: readonly PartitionReadRequest[],
  limit: number,
): Promise<PartitionRead[]> {
  if (requests.length === 0) return [];
  const values = [
    requests.map((r) => r.partition),
    requests.map((r) => r.from.snapshot),
    requests.map((r) => r.from.target),
    requests.map((r) => r.from.afterXid),
    requests.map((r) => r.from.afterSeq),
    requests.map((r) => r.reach?.snapshot ?? null),
    requests.map((r) => r.reach?.target ?? null),
    requests.map((r) => r.reach?.afterXid ?? null),
    requests.map((r) => r.reach?.afterSeq ?? null),
    limit,
  ];
  const query = { name: 'outbox_read_log', text: READ_LOG_SQL, values, rowMode: 'array' as const };
  const pool = poolOf(db);
  if (pool === undefined) throw new TypeError('readOutboxLog needs a Db made by createDb');
  const { rows } = await pool.query<ReadRow>(query);
  const byPartition = new Map<number, { target: string; events: LogEvent[] }>();
  for (const row of rows) {
    const [partition, target, id] = row;
    let read = byPartition.get(partition);
    if (read === undefined) {
      read = { target, events: [] };
      byPartition.set(partition, read);
    }
    if (id === null) continue;
    read.events.push({
      id,
      xid: row[3],
      seq: row[4],
      subject: row[5],
      payload: row[6],
      headers: row[7],
      createdAtMs: row[8],
      uncertain: row[9] === true,
    });
  }
  return requests.map((request) => {
    const read = byPartition.get(request.partition);
    if (read === undefined)
      throw new Error(`outbox read returned nothing for partition ${request.partition}`);
    return {
      partition: request.partition,
      events: read.events,
      next: nextPosition(request.from, read, limit),
    };
  });
}

/** A window read to its end becomes the next snapshot; otherwise the position moves to the last row. */
function nextPosition(
  from: LogPosition,
  read: { readonly target: string; readonly events: readonly LogEvent[] },
  limit: number,
): LogPosition {
  const last = read.events.at(-1);
  if (read.events.length < limit || last === undefined) {
    return { snapshot: read.target, target: null, afterXid: null, afterSeq: null };
  }
  return { snapshot: from.snapshot, target: read.target, afterXid: last.xid, afterSeq: last.seq };
}

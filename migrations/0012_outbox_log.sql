-- The outbox read as a log: the relay no longer writes each row it publishes (a lease, then a mark:
-- two new tuple versions per event, bloat behind any old snapshot). Each row records the transaction
-- that inserted it; relays hold partitions, and each partition has a cursor saying which transactions'
-- rows it has read, in the spirit of PgQ's snapshot diffs. packages/db/src/outbox-log.ts reads it.

-- Which transaction wrote the row, for every writer (a column default, not something the API must
-- remember). xid8 is 64 bits: no wraparound. Rows that exist now get this migration's transaction id;
-- see the end of the file for what becomes of them.
ALTER TABLE outbox
  ADD COLUMN xid xid8 NOT NULL DEFAULT pg_current_xact_id(),
  -- The aggregate's partition: every event of one order lands in one partition, read by one relay at a
  -- time and in order. 16 is fixed here; to change it, stop the relays with the outbox drained, replace
  -- this expression and the rows of outbox_partitions in a new migration, and start them again.
  ADD COLUMN partition smallint NOT NULL
    GENERATED ALWAYS AS ((hashtext(aggregate_type || '/' || aggregate_id) & 2147483647) % 16) STORED;

-- The only index the read uses: per partition, in (xid, seq) order. The reads walk it from the
-- partition's cursor onwards (and probe it for the transactions the cursor saw in progress), so they
-- touch the backlog only, however many read rows retention keeps.
CREATE INDEX outbox_log_idx ON outbox (partition, xid, seq);

-- The partitions relays hold. A relay takes partitions with FOR UPDATE SKIP LOCKED and keeps them with a
-- lease while its presence lock (RELAY_PRESENCE_LOCK) says it is alive; `epoch` changes with every
-- change of owner, so a relay that lost a partition cannot write its cursor any more.
CREATE TABLE outbox_partitions (
  partition   smallint    PRIMARY KEY CHECK (partition >= 0),
  owner       text,
  lease_until timestamptz,
  epoch       bigint      NOT NULL DEFAULT 0
);
INSERT INTO outbox_partitions (partition) SELECT generate_series(0, 15);
-- Statistics from the start: unanalyzed, the planner assumes a thousand rows here and plans the
-- per-partition queries as if there were that many partitions.
ANALYZE outbox_partitions;

-- Cursors, insert-only: a relay appends a record per batch and the latest record of a partition is its
-- cursor. Updating one row per partition instead would leave a new version per batch, and behind an old
-- snapshot (a long report, an idle transaction) those versions cannot be vacuumed: every read of the
-- row then walks them all. An append-only record is found by one backward index probe, whatever is
-- left behind it; retention deletes the old records.
--
-- A position in the log is (snapshot, target, after_xid, after_seq): every row whose transaction is
-- visible in `snapshot` has been read, and of the rows whose transaction became visible between
-- `snapshot` and `target`, those up to (after_xid, after_seq) too. `acked` is how far JetStream
-- acknowledged; `reach` how far a relay may have published (written before each publish), with
-- `reach_at` the time of the earliest publish not acknowledged yet. Rows between the two may already
-- be in the stream: a relay that takes the partition over re-publishes them (Nats-Msg-Id recognises
-- them within the duplicate window) or looks them up in the stream (beyond it).
CREATE TABLE outbox_cursors (
  id                  bigint      GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
  partition           smallint    NOT NULL,
  acked_snapshot      pg_snapshot NOT NULL,
  acked_target        pg_snapshot,
  acked_after_xid     xid8,
  acked_after_seq     bigint,
  reach_snapshot      pg_snapshot,
  reach_target        pg_snapshot,
  reach_after_xid     xid8,
  reach_after_seq     bigint,
  reach_at            timestamptz,
  written_by          text,
  written_at          timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX outbox_cursors_latest_idx ON outbox_cursors (partition, id DESC);

-- Has the cursor position (snapshot, target, after) read the row (xid, seq)? One definition for the
-- relay's re-publish check, the backlog, status and retention.
CREATE FUNCTION outbox_position_covers(
  row_xid xid8, row_seq bigint,
  snapshot pg_snapshot, target pg_snapshot, after_xid xid8, after_seq bigint
) RETURNS boolean LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
  SELECT snapshot IS NOT NULL AND (
    pg_visible_in_snapshot(row_xid, snapshot)
    OR (target IS NOT NULL AND after_xid IS NOT NULL AND pg_visible_in_snapshot(row_xid, target)
        AND (row_xid, row_seq) <= (after_xid, after_seq)))
$$;

-- Each partition's cursor: its latest record.
CREATE VIEW outbox_cursor AS
  SELECT p.partition, p.owner, p.lease_until, c.*
  FROM outbox_partitions AS p
  LEFT JOIN LATERAL (
    SELECT c.id AS cursor_id, c.acked_snapshot, c.acked_target, c.acked_after_xid, c.acked_after_seq,
           c.reach_snapshot, c.reach_target, c.reach_after_xid, c.reach_after_seq, c.reach_at,
           c.written_by, c.written_at
    FROM outbox_cursors AS c WHERE c.partition = p.partition ORDER BY c.id DESC LIMIT 1
  ) AS c ON true;

-- Rows that failed for a reason of their own (too large, no stream for the subject, a bad header),
-- counted while the relay retries them. Written only on failure.
CREATE TABLE outbox_failures (
  id              uuid        PRIMARY KEY,
  attempts        integer     NOT NULL CHECK (attempts > 0),
  last_error      text        NOT NULL,
  first_failed_at timestamptz NOT NULL DEFAULT now(),
  last_failed_at  timestamptz NOT NULL DEFAULT now()
);

-- Dead letters: rows that failed RELAY_MAX_ATTEMPTS times leave the log for this table, so the
-- partition's cursor moves on. `relay requeue-dead` puts them back in the log with their original id.
CREATE TABLE outbox_dead (
  id             uuid        PRIMARY KEY,
  aggregate_type text        NOT NULL,
  aggregate_id   text        NOT NULL,
  event_type     text        NOT NULL,
  subject        text        NOT NULL,
  payload        json        NOT NULL,
  headers        jsonb       NOT NULL,
  created_at     timestamptz NOT NULL,
  attempts       integer     NOT NULL,
  last_error     text        NOT NULL,
  dead_at        timestamptz NOT NULL DEFAULT now()
);

-- ---------------------------------------------------------------- rows of the lease-and-mark model
-- Dead rows move to the dead letters.
INSERT INTO outbox_dead (id, aggregate_type, aggregate_id, event_type, subject, payload, headers,
                         created_at, attempts, last_error, dead_at)
  SELECT id, aggregate_type, aggregate_id, event_type, subject, payload, headers, created_at,
         attempts, coalesce(last_error, ''), dead_at
  FROM outbox WHERE dead_at IS NOT NULL AND published_at IS NULL;
DELETE FROM outbox WHERE dead_at IS NOT NULL AND published_at IS NULL;

-- Every cursor starts at a snapshot taken now: every committed transaction's rows count as read.
-- Published rows must, so those stamped with this transaction's id above take an id that every
-- snapshot sees (3, the first normal xid). Pending rows keep this transaction's id, which no snapshot
-- taken inside it sees: they are read once the migration commits. Transactions in progress now are in
-- the snapshot's in-progress list; their rows are read when they commit.
UPDATE outbox SET xid = '3' WHERE published_at IS NOT NULL AND xid = pg_current_xact_id();
UPDATE outbox SET xid = pg_current_xact_id() WHERE published_at IS NULL;

-- A pending row a relay had already taken may be in the stream: the partition's reach covers every
-- row of this transaction, from the earliest such claim, so the first relay re-publishes them with
-- their ids (or looks them up beyond the duplicate window) rather than sending them as new.
INSERT INTO outbox_cursors (partition, acked_snapshot, reach_snapshot, reach_at, written_by)
  SELECT p.partition, pg_current_snapshot(),
         CASE WHEN claimed.first_at IS NOT NULL THEN
           ((pg_current_xact_id()::text::bigint + 1)::text || ':' || (pg_current_xact_id()::text::bigint + 1)::text || ':')::pg_snapshot
         END,
         claimed.first_at, 'migration 0012'
  FROM outbox_partitions AS p
  LEFT JOIN (
    SELECT partition, min(first_claimed_at) AS first_at FROM outbox
    WHERE published_at IS NULL AND claims > 0 GROUP BY partition
  ) AS claimed USING (partition);

-- The lease-and-mark columns and their indexes go.
DROP INDEX outbox_unpublished_idx;
DROP INDEX outbox_dead_idx;
DROP INDEX outbox_pending_aggregate_idx;
ALTER TABLE outbox
  DROP COLUMN published_at,
  DROP COLUMN attempts,
  DROP COLUMN last_error,
  DROP COLUMN locked_until,
  DROP COLUMN locked_by,
  DROP COLUMN first_claimed_at,
  DROP COLUMN claims,
  DROP COLUMN dead_at;
-- Rows are written once and never updated: pack the pages full again (0011 left half of each free for
-- the lease's updates).
ALTER TABLE outbox SET (fillfactor = 100);

-- 0012 started every cursor at pg_current_snapshot() taken inside its own transaction, to leave the
-- pending rows it had stamped with that transaction's id ahead of the cursors. A snapshot never lists
-- its own transaction as in progress, though: when another transaction on the server committed after
-- this one took its id (any busy server; CI's parallel test files), the snapshot's xmax passed this id,
-- and the cursors counted those pending rows as read, so they were never published. Found by CI: the
-- upgrade test saw 0 pending rows of 25.
--
-- The migrator applies every pending file in one transaction, so an upgrade through 0012 runs this in
-- the same transaction: the cursors 0012 has just written (this transaction's own rows) get this
-- transaction's id in their in-progress list, which makes its rows ahead of them again. A database
-- that applied 0012 before this file existed is left as it is (its cursors have moved on since).
UPDATE outbox_cursors AS c
SET acked_snapshot = (
  pg_snapshot_xmin(c.acked_snapshot)::text || ':' || pg_snapshot_xmax(c.acked_snapshot)::text || ':' ||
  (SELECT string_agg(u.xid::text, ',' ORDER BY u.xid)
   FROM (SELECT pg_snapshot_xip(c.acked_snapshot) AS xid UNION SELECT pg_current_xact_id()) AS u)
)::pg_snapshot
WHERE c.written_by = 'migration 0012'
  AND c.xmin = xid(pg_current_xact_id())
  AND pg_visible_in_snapshot(pg_current_xact_id(), c.acked_snapshot);

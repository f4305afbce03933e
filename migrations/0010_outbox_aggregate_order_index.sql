-- The per-aggregate check of the claim ("is an earlier row of this aggregate still waiting?") must be
-- one probe of the (aggregate_type, aggregate_id, seq) index per candidate, whatever the statistics
-- say. With 0008's index, whose predicate equals outbox_unpublished_idx's, the planner could answer
-- the check from either; when the statistics say nothing is waiting (analyzed while drained, then a
-- backlog during a NATS outage) both look free and it took the wrong one, or an anti-join, and the
-- claim walked the backlog once per candidate. This index's predicate leaves out dead_at, so only it
-- matches the check (which tests dead_at on the row it finds): the choice is gone. Dead rows are few.
DROP INDEX outbox_pending_aggregate_idx;
CREATE INDEX outbox_pending_aggregate_idx ON outbox (aggregate_type, aggregate_id, seq)
  WHERE published_at IS NULL;

-- Per-aggregate ordering: a row is claimable only when no earlier row of the same aggregate is still
-- waiting. The claim asks that for each candidate; this partial index answers it from the backlog
-- alone (it holds only unpublished, live rows, so it stays as small as the backlog).
CREATE INDEX outbox_pending_aggregate_idx ON outbox (aggregate_type, aggregate_id, seq)
  WHERE published_at IS NULL AND dead_at IS NULL;

-- Every mark (published_at set) changes a column of the partial index's predicate, so it is never a HOT
-- update: PostgreSQL inserts a new entry into every index of the table for every published row. Keep
-- only the indexes the hot paths use: the primary key (marks by id) and the partial claim index.
-- `seq` stays unique in practice (an identity column); the UNIQUE index only cost writes. Lookups by
-- aggregate are rare (operators, replays) and can scan.
ALTER TABLE outbox DROP CONSTRAINT outbox_seq_key;
DROP INDEX outbox_aggregate_idx;

-- Room on each page for the claim's lease update to stay HOT (no index columns change there).
ALTER TABLE outbox SET (fillfactor = 85);

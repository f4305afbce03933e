-- What the relay needs to claim rows with a lease and to set poison rows aside.

ALTER TABLE outbox
  -- Lease: a claimed row is skipped by other relays until this time; a crashed relay's rows come
  -- back on their own when it passes.
  ADD COLUMN locked_until     timestamptz,
  ADD COLUMN locked_by        text,
  -- When a relay first took the row to publish it. A row claimed again after this may already be in
  -- the stream: within the stream's duplicate window, Nats-Msg-Id makes the re-publish harmless.
  ADD COLUMN first_claimed_at timestamptz,
  ADD COLUMN claims           integer NOT NULL DEFAULT 0,
  -- Set when a row failed RELAY_MAX_ATTEMPTS times for a reason tied to the row: it leaves the claim path.
  ADD COLUMN dead_at          timestamptz;

-- The claim path: unpublished rows that are not dead, oldest first.
DROP INDEX outbox_unpublished_idx;
CREATE INDEX outbox_unpublished_idx ON outbox (seq) WHERE published_at IS NULL AND dead_at IS NULL;
CREATE INDEX outbox_dead_idx ON outbox (dead_at) WHERE dead_at IS NOT NULL;

-- Wake-up hint for listening relays, sent with the inserting transaction's commit. One per statement
-- (and PostgreSQL folds identical notifications within a transaction), with no payload: the relay's
-- claim query finds every committed row anyway, so the hint only has to say "look now".
CREATE FUNCTION outbox_notify() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  PERFORM pg_notify('outbox', '');
  RETURN NULL;
END $$;

CREATE TRIGGER outbox_notify AFTER INSERT ON outbox
  FOR EACH STATEMENT EXECUTE FUNCTION outbox_notify();

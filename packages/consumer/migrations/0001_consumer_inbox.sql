-- The inbox of packages/consumer: one row per event a consumer handled, written in the handler's own
-- transaction. A redelivered or replayed event whose id is here is acknowledged without running the
-- handler again. `consumer` is the durable consumer's name, so several consumers may share a database.
CREATE TABLE consumer_inbox (
  consumer     text        NOT NULL,
  -- The event's Nats-Msg-Id (the outbox id of the service that published it).
  event_id     text        NOT NULL,
  subject      text        NOT NULL,
  -- Where the copy that was handled sat in the stream: a replay puts the same id at a later sequence.
  stream_seq   bigint      NOT NULL,
  processed_at timestamptz NOT NULL DEFAULT now(),
  PRIMARY KEY (consumer, event_id)
);
-- Retention deletes by age from the old end; rows are appended in time order, so a BRIN index of a few
-- pages finds it, and costs the hot insert almost nothing (a B-tree on the timestamp would be a second
-- index entry per event).
CREATE INDEX consumer_inbox_processed_brin ON consumer_inbox USING brin (processed_at);

-- Dead letters: events whose handler failed on every allowed delivery (or that cannot be handled at
-- all: no Nats-Msg-Id, a payload that is not JSON, a handler that refused it as poison). Acknowledged
-- so the consumer goes on; kept here with the error for an operator, never silently skipped.
CREATE TABLE consumer_dead (
  consumer    text        NOT NULL,
  -- The Nats-Msg-Id, or `seq:<stream_seq>` for a message that had none.
  event_id    text        NOT NULL,
  stream      text        NOT NULL,
  stream_seq  bigint      NOT NULL,
  subject     text        NOT NULL,
  headers     jsonb       NOT NULL,
  payload     text        NOT NULL,
  deliveries  integer     NOT NULL,
  last_error  text        NOT NULL,
  dead_at     timestamptz NOT NULL DEFAULT now(),
  PRIMARY KEY (consumer, event_id)
);

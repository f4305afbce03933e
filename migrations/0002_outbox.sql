-- The transactional outbox: written in the same transaction as the business change, read by the relay.

CREATE TABLE outbox (
  -- The event's id. The relay sends it as Nats-Msg-Id, so JetStream drops a re-publish of the same event.
  id             uuid        PRIMARY KEY,
  -- Creation order. Claims take the lowest first, so a backlog drains in the order it was written.
  seq            bigint      GENERATED ALWAYS AS IDENTITY UNIQUE,
  aggregate_type text        NOT NULL,
  aggregate_id   text        NOT NULL,
  event_type     text        NOT NULL,
  subject        text        NOT NULL CHECK (subject <> ''),
  payload        jsonb       NOT NULL,
  -- Extra NATS headers to send with the message (traceparent, ...): a flat object of strings.
  headers        jsonb       NOT NULL DEFAULT '{}'::jsonb CHECK (jsonb_typeof(headers) = 'object'),
  created_at     timestamptz NOT NULL DEFAULT now(),
  published_at   timestamptz,
  attempts       integer     NOT NULL DEFAULT 0 CHECK (attempts >= 0),
  last_error     text
);

-- "Oldest unpublished rows" is the relay's only hot query. The partial index holds nothing but the
-- backlog, so it stays small however many published rows the table keeps.
CREATE INDEX outbox_unpublished_idx ON outbox (seq) WHERE published_at IS NULL;

CREATE INDEX outbox_aggregate_idx ON outbox (aggregate_type, aggregate_id, seq);

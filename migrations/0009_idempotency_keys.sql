-- Idempotency-Key on POST /orders: the key, a hash of the request body and the response, written in the
-- same statement (so the same transaction) as the order they describe. A retry with the same key and
-- body gets the stored response back; nothing is created twice.
CREATE TABLE idempotency_keys (
  key          text        PRIMARY KEY,
  -- sha256 of the request body's JSON with object keys sorted: the same body re-serialised still matches.
  request_hash text        NOT NULL,
  status_code  integer     NOT NULL,
  -- The response body exactly as first sent.
  response     text        NOT NULL,
  order_id     uuid        NOT NULL,
  created_at   timestamptz NOT NULL,
  expires_at   timestamptz NOT NULL
);
-- The API prunes expired keys in small batches; an expired key that is still here can be taken again.
CREATE INDEX idempotency_keys_expires_idx ON idempotency_keys (expires_at);

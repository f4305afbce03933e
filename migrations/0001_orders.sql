-- Orders and their lines. Money is NUMERIC (never float); the API computes totals in integer cents.
-- Ids and timestamps are supplied by the API so the order, its items and its event carry the same values.

CREATE TABLE orders (
  id           uuid          PRIMARY KEY,
  customer_id  uuid          NOT NULL,
  status       text          NOT NULL DEFAULT 'draft'
               CHECK (status IN ('draft', 'placed', 'cancelled', 'shipped', 'completed')),
  total_amount numeric(14,2) NOT NULL CHECK (total_amount >= 0),
  metadata     jsonb         NOT NULL DEFAULT '{}'::jsonb CHECK (jsonb_typeof(metadata) = 'object'),
  created_at   timestamptz   NOT NULL DEFAULT now(),
  updated_at   timestamptz   NOT NULL DEFAULT now()
);

-- Keyset pagination, newest first, optionally filtered by customer or status.
CREATE INDEX orders_created_idx          ON orders (created_at DESC, id DESC);
CREATE INDEX orders_customer_created_idx ON orders (customer_id, created_at DESC, id DESC);
CREATE INDEX orders_status_created_idx   ON orders (status, created_at DESC, id DESC);

CREATE TABLE order_items (
  id         uuid          PRIMARY KEY,
  order_id   uuid          NOT NULL REFERENCES orders (id) ON DELETE CASCADE,
  -- The line's place in the request, so an order reads back in the order it was written.
  position   integer       NOT NULL CHECK (position >= 0),
  sku        text          NOT NULL CHECK (char_length(sku) BETWEEN 1 AND 64),
  qty        integer       NOT NULL CHECK (qty > 0),
  price      numeric(12,2) NOT NULL CHECK (price >= 0),
  created_at timestamptz   NOT NULL DEFAULT now(),
  UNIQUE (order_id, position)
);

-- The inventory's stock, per sku. Available to reserve: qty_on_hand - reserved_qty. PUT /inventory/{sku}
-- sets qty_on_hand; only reservations (the consumer of order events) move reserved_qty.
CREATE TABLE inventory_items (
  sku          text        PRIMARY KEY CHECK (char_length(sku) BETWEEN 1 AND 64),
  qty_on_hand  integer     NOT NULL CHECK (qty_on_hand >= 0),
  reserved_qty integer     NOT NULL DEFAULT 0 CHECK (reserved_qty >= 0),
  created_at   timestamptz NOT NULL DEFAULT now(),
  updated_at   timestamptz NOT NULL DEFAULT now()
);

-- What each order reserved, per sku: a release gives back exactly this, once (released_at set).
-- One row per (order, sku): an order's lines of the same sku are summed when reserved.
CREATE TABLE inventory_reservations (
  order_id    uuid        NOT NULL,
  sku         text        NOT NULL REFERENCES inventory_items (sku),
  qty         integer     NOT NULL CHECK (qty > 0),
  reserved_at timestamptz NOT NULL DEFAULT now(),
  released_at timestamptz,
  PRIMARY KEY (order_id, sku)
);

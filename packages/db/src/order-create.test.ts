import { describe, expect, it } from 'vitest';
import type { NamedStatement } from './named-statement.js';
import {
  CREATE_ORDER,
  CREATE_ORDER_IDEMPOTENT,
  type CreateOrderIdempotentParams,
  createParams,
} from './order-create.js';
import type { NewOrder } from './orders.js';
import type { NewOutboxEvent } from './outbox.js';

// Every value distinct and recognisable, so a value bound to the wrong column shows in the text.
const order: NewOrder = {
  id: 'order-id',
  customer_id: 'customer-id',
  total_amount: '50.00',
  metadata: { m: 1 },
  created_at: new Date('2026-01-01T00:00:01.000Z'),
  items: [
    { id: 'item-a', sku: 'SKU-A', qty: 1, price: '10.00' },
    { id: 'item-b', sku: 'SKU-B', qty: 2, price: '20.00' },
  ],
};
const event: NewOutboxEvent = {
  id: 'event-id',
  aggregateType: 'aggregate-type',
  aggregateId: 'aggregate-id',
  eventType: 'event-type',
  subject: 'subject',
  payload: { p: 1 },
  headers: { h: '1' },
  createdAt: new Date('2026-01-01T00:00:02.000Z'),
};
const idempotent: CreateOrderIdempotentParams = {
  ...createParams(order, event),
  key: 'key',
  request_hash: 'request-hash',
  status_code: 201,
  response: 'response',
  expires_at: new Date('2026-01-02T00:00:03.000Z'),
};

function literal(value: unknown): string {
  if (Array.isArray(value)) return `ARRAY[${value.map(literal).join(', ')}]`;
  if (value instanceof Date) return `'${value.toISOString()}'`;
  if (typeof value === 'number') return String(value);
  return `'${String(value)}'`;
}

/** The statement as PostgreSQL runs it with these params: each `$n` replaced by its value. */
function bound<P>(statement: NamedStatement<P>, params: P): string {
  const values = statement.values(params);
  return statement.text.replace(/\$(\d+)/g, (_, n: string) => literal(values[Number(n) - 1]));
}

const oneLine = (text: string) => text.replace(/\s+/g, ' ').trim();

describe('the order-create statement', () => {
  it('binds each value of an order and its event to its column', () => {
    expect(bound(CREATE_ORDER, createParams(order, event))).toBe(
      oneLine(`
      with "new_order" as (insert into "orders" ("id", "customer_id", "status", "total_amount", "metadata", "created_at", "updated_at")
        values ('order-id', 'customer-id', 'draft', '50.00', '{"m":1}', '2026-01-01T00:00:01.000Z', '2026-01-01T00:00:01.000Z')),
      "new_items" as (insert into "order_items" ("id", "order_id", "position", "sku", "qty", "price", "created_at")
        select "item"."id", 'order-id'::uuid as "order_id", cast("item"."ord" - 1 as integer) as "position", "item"."sku", "item"."qty", "item"."price", '2026-01-01T00:00:01.000Z'::timestamptz as "created_at"
        from unnest(ARRAY['item-a', 'item-b']::uuid[], ARRAY['SKU-A', 'SKU-B']::text[], ARRAY[1, 2]::int[], ARRAY['10.00', '20.00']::numeric[]) WITH ORDINALITY as item (id, sku, qty, price, ord))
      insert into "outbox" ("id", "aggregate_type", "aggregate_id", "event_type", "subject", "payload", "headers", "created_at")
        values ('event-id', 'aggregate-type', 'aggregate-id', 'event-type', 'subject', '{"p":1}', '{"h":"1"}', '2026-01-01T00:00:02.000Z')`),
    );
  });

  it('behind an idempotency key, binds the key row and the same values to their columns', () => {
    const gate = 'where exists (select 1 as "one" from "idem")';
    expect(bound(CREATE_ORDER_IDEMPOTENT, idempotent)).toBe(
      oneLine(`
      with "idem" as (insert into "idempotency_keys" ("key", "request_hash", "status_code", "response", "order_id", "created_at", "expires_at")
        values ('key', 'request-hash', 201, 'response', 'order-id', '2026-01-01T00:00:01.000Z', '2026-01-02T00:00:03.000Z')
        on conflict ("key") do update set "request_hash" = "excluded"."request_hash", "status_code" = "excluded"."status_code",
          "response" = "excluded"."response", "order_id" = "excluded"."order_id", "created_at" = "excluded"."created_at",
          "expires_at" = "excluded"."expires_at"
        where "idempotency_keys"."expires_at" < now() returning 1 as "one"),
      "new_order" as (insert into "orders" ("id", "customer_id", "status", "total_amount", "metadata", "created_at", "updated_at")
        select 'order-id'::uuid as "id", 'customer-id'::uuid as "customer_id", 'draft' as "status", '50.00'::numeric as "total_amount",
          '{"m":1}'::jsonb as "metadata", '2026-01-01T00:00:01.000Z'::timestamptz as "created_at", '2026-01-01T00:00:01.000Z'::timestamptz as "updated_at"
        ${gate}),
      "new_items" as (insert into "order_items" ("id", "order_id", "position", "sku", "qty", "price", "created_at")
        select "item"."id", 'order-id'::uuid as "order_id", cast("item"."ord" - 1 as integer) as "position", "item"."sku", "item"."qty", "item"."price", '2026-01-01T00:00:01.000Z'::timestamptz as "created_at"
        from unnest(ARRAY['item-a', 'item-b']::uuid[], ARRAY['SKU-A', 'SKU-B']::text[], ARRAY[1, 2]::int[], ARRAY['10.00', '20.00']::numeric[]) WITH ORDINALITY as item (id, sku, qty, price, ord)
        ${gate})
      insert into "outbox" ("id", "aggregate_type", "aggregate_id", "event_type", "subject", "payload", "headers", "created_at")
        select 'event-id'::uuid as "id", 'aggregate-type'::text as "aggregate_type", 'aggregate-id'::text as "aggregate_id",
          'event-type'::text as "event_type", 'subject'::text as "subject", '{"p":1}'::json as "payload", '{"h":"1"}'::jsonb as "headers",
          '2026-01-01T00:00:02.000Z'::timestamptz as "created_at"
        ${gate}`),
    );
  });

  it('has one parameter per named value, each used, none left out', () => {
    expect([...CREATE_ORDER.names].sort()).toEqual(Object.keys(createParams(order, event)).sort());
    expect([...CREATE_ORDER_IDEMPOTENT.names].sort()).toEqual(Object.keys(idempotent).sort());
  });

  it('falls back to the order time for an event without one, and to empty headers', () => {
    const { createdAt: _, headers: __, ...bare } = event;
    const params = createParams(order, bare);
    expect(params.event_created_at).toBe(order.created_at);
    expect(params.headers).toBe('{}');
  });
});

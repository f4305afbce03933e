import { ORDER_STATUSES, type OrderStatusName } from '@orders/events';
import type { ColumnType, JSONColumnType } from 'kysely';

// The statuses are the events package's list (the contract's); the orders table's CHECK holds the same
// names, and test/order-statuses.int.test.ts reads that constraint back from pg_constraint to prove it.
export { ORDER_STATUSES };
export type OrderStatus = OrderStatusName;

/** NUMERIC comes back from pg as a string (exact); we write it as a decimal string too. */
type Numeric = ColumnType<string, string, string>;
type JsonObject = Record<string, unknown>;

export interface OrdersTable {
  id: string;
  customer_id: string;
  status: ColumnType<OrderStatus, OrderStatus | undefined, OrderStatus>;
  total_amount: Numeric;
  metadata: JSONColumnType<JsonObject, string, string>;
  created_at: ColumnType<Date, Date | undefined, never>;
  updated_at: ColumnType<Date, Date | undefined, Date>;
}

export interface OrderItemsTable {
  id: string;
  order_id: string;
  position: number;
  sku: string;
  qty: number;
  price: Numeric;
  created_at: ColumnType<Date, Date | undefined, never>;
}

export interface OutboxTable {
  id: string;
  seq: ColumnType<string, never, never>;
  aggregate_type: string;
  aggregate_id: string;
  event_type: string;
  subject: string;
  payload: JSONColumnType<JsonObject, string, string>;
  headers: JSONColumnType<Record<string, string>, string | undefined, string>;
  created_at: ColumnType<Date, Date | undefined, never>;
  /** The inserting transaction's id (xid8, as text), set by the column default. */
  xid: ColumnType<string, never, never>;
  /** hash(aggregate) mod 16, a generated column: the partition whose cursor reads the row. */
  partition: ColumnType<number, never, never>;
}

export interface IdempotencyKeysTable {
  key: string;
  request_hash: string;
  status_code: number;
  response: string;
  order_id: string;
  created_at: Date;
  expires_at: Date;
}

/** The schema as Kysely sees it: snake_case, one name per column everywhere. */
export interface Database {
  orders: OrdersTable;
  order_items: OrderItemsTable;
  outbox: OutboxTable;
  idempotency_keys: IdempotencyKeysTable;
}

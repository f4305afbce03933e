import { type Kysely, type Selectable, sql, type Transaction } from 'kysely';
import { type NewOutboxEvent, outboxValues } from './outbox.js';
import type { Database, OrderItemsTable, OrderStatus, OrdersTable } from './schema.js';

export type OrderRow = Selectable<OrdersTable>;
export type OrderItemRow = Selectable<OrderItemsTable>;
export interface OrderWithItems extends OrderRow {
  readonly items: readonly OrderItemRow[];
}

export interface NewOrder {
  readonly id: string;
  readonly customer_id: string;
  /** Decimal string, exact: computed by the caller in integer cents. */
  readonly total_amount: string;
  readonly metadata: Readonly<Record<string, unknown>>;
  readonly created_at: Date;
  readonly items: readonly {
    readonly id: string;
    readonly sku: string;
    readonly qty: number;
    readonly price: string;
  }[];
}

export function orderValues(order: NewOrder) {
  return {
    id: order.id,
    customer_id: order.customer_id,
    status: 'draft' as const,
    total_amount: order.total_amount,
    metadata: JSON.stringify(order.metadata),
    created_at: order.created_at,
    updated_at: order.created_at,
  };
}

function itemValues(order: NewOrder) {
  return order.items.map((item, position) => ({
    id: item.id,
    order_id: order.id,
    position,
    sku: item.sku,
    qty: item.qty,
    price: item.price,
    created_at: order.created_at,
  }));
}

/** Inserts the order and all its items (one multi-row insert) inside the caller's transaction. */
export async function insertOrder(trx: Transaction<Database>, order: NewOrder): Promise<void> {
  await trx.insertInto('orders').values(orderValues(order)).execute();
  await trx.insertInto('order_items').values(itemValues(order)).execute();
}

/** Deletes up to `batchSize` expired idempotency keys; returns how many. */
export async function pruneIdempotencyKeys(db: Kysely<Database>, batchSize = 5000): Promise<number> {
  const result = await sql`
    DELETE FROM idempotency_keys WHERE key IN (
      SELECT key FROM idempotency_keys WHERE expires_at < now() LIMIT ${batchSize} FOR UPDATE SKIP LOCKED)`.execute(
    db,
  );
  return Number(result.numAffectedRows ?? 0);
}

async function itemsFor(
  db: Kysely<Database>,
  orderIds: readonly string[],
): Promise<Map<string, OrderItemRow[]>> {
  const byOrder = new Map<string, OrderItemRow[]>(orderIds.map((id) => [id, []]));
  if (orderIds.length === 0) return byOrder;
  const rows = await db
    .selectFrom('order_items')
    .selectAll()
    .where('order_id', 'in', orderIds)
    .orderBy('order_id')
    .orderBy('position')
    .execute();
  for (const row of rows) byOrder.get(row.order_id)?.push(row);
  return byOrder;
}

/** The order with its items, or undefined. */
export async function findOrder(db: Kysely<Database>, id: string): Promise<OrderWithItems | undefined> {
  const order = await db.selectFrom('orders').selectAll().where('id', '=', id).executeTakeFirst();
  if (!order) return undefined;
  const items = await itemsFor(db, [id]);
  return { ...order, items: items.get(id) ?? [] };
}

export type StatusChange =
  | { readonly kind: 'not_found' }
  /** The order already has the requested status: nothing written, no event. */
  | { readonly kind: 'unchanged'; readonly order: OrderWithItems }
  /** The lifecycle does not allow it from the current status. */
  | { readonly kind: 'refused'; readonly from: OrderStatus }
  | { readonly kind: 'changed'; readonly from: OrderStatus; readonly order: OrderWithItems };

/**
 * Moves an order to `to` if `allowed(current)` says so, and writes the event `eventFor(from)` describes
 * in the same transaction. Optimistic: the update only applies if the status is still the one read
 * (compare-and-set on `status`); when another change won in between, it reads again and decides anew
 * from the new status, so two racing changes never both start from the same status, and each event's
 * `from` is the status it really replaced. Row locks taken by the UPDATE order the changes of one order,
 * so their outbox rows get increasing `seq` in commit order.
 */
export async function changeOrderStatus(
  db: Kysely<Database>,
  id: string,
  to: OrderStatus,
  now: Date,
  allowed: (from: OrderStatus) => boolean,
  eventFor: (from: OrderStatus) => NewOutboxEvent,
): Promise<StatusChange> {
  for (let attempt = 0; ; attempt++) {
    const current = await db.selectFrom('orders').select('status').where('id', '=', id).executeTakeFirst();
    if (!current) return { kind: 'not_found' };
    const from = current.status;
    if (from === to) {
      const order = await findOrder(db, id);
      return order ? { kind: 'unchanged', order } : { kind: 'not_found' };
    }
    if (!allowed(from)) return { kind: 'refused', from };
    const changed = await db.transaction().execute(async (trx) => {
      const order = await trx
        .updateTable('orders')
        .set({ status: to, updated_at: now })
        .where('id', '=', id)
        .where('status', '=', from)
        .returningAll()
        .executeTakeFirst();
      if (!order) return undefined;
      await trx
        .insertInto('outbox')
        .values(outboxValues(eventFor(from)))
        .execute();
      return order;
    });
    if (changed) {
      const items = await itemsFor(db, [id]);
      return { kind: 'changed', from, order: { ...changed, items: items.get(id) ?? [] } };
    }
    // Lost the race: someone changed the status since it was read. Decide again from what it is now.
    if (attempt >= 10) throw new Error(`order ${id}: status kept changing under ten attempts`);
  }
}

/** Position of the last row of a page: the next page starts strictly after it. */
export interface OrderCursor {
  /**
   * `created_at` exactly as stored, to the microsecond, as ISO 8601 UTC text
   * (`2026-11-30T12:00:00.123456Z`). Not a Date: a Date holds milliseconds, and a cursor rounded
   * down to one would skip the rows of that millisecond that sort after it. Fewer fractional digits
   * are read as zeros.
   */
  readonly created_at: string;
  readonly id: string;
}

export interface ListOrdersQuery {
  readonly limit: number;
  readonly after?: OrderCursor | undefined;
  readonly customer_id?: string | undefined;
  readonly status?: OrderStatus | undefined;
}

/**
 * A page of orders, newest first, by keyset on `(created_at, id)`: stable under concurrent inserts and
 * as cheap on page 1,000 as on page 1. Fetches one row more than asked to know whether a next page exists.
 */
export async function listOrders(
  db: Kysely<Database>,
  query: ListOrdersQuery,
): Promise<{ orders: OrderWithItems[]; next: OrderCursor | undefined }> {
  let q = db
    .selectFrom('orders')
    .selectAll()
    // Formatted by PostgreSQL, which has the microseconds that pg's Date parsing drops.
    .select(
      sql<string>`to_char(created_at AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"')`.as('cursor_at'),
    );
  if (query.customer_id !== undefined) q = q.where('customer_id', '=', query.customer_id);
  if (query.status !== undefined) q = q.where('status', '=', query.status);
  const after = query.after;
  if (after !== undefined) {
    q = q.where(({ eb, refTuple, tuple }) =>
      eb(
        refTuple('created_at', 'id'),
        '<',
        tuple(sql<Date>`${after.created_at}::timestamptz`, sql<string>`${after.id}::uuid`),
      ),
    );
  }
  const rows = await q
    .orderBy('created_at', 'desc')
    .orderBy('id', 'desc')
    .limit(query.limit + 1)
    .execute();
  const page = rows.slice(0, query.limit);
  const last = page.at(-1);
  const next = rows.length > query.limit && last ? { created_at: last.cursor_at, id: last.id } : undefined;
  const items = await itemsFor(
    db,
    page.map((o) => o.id),
  );
  return {
    orders: page.map(({ cursor_at: _, ...o }) => ({ ...o, items: items.get(o.id) ?? [] })),
    next,
  };
}

import type { Transaction } from 'kysely';
import type { InventoryDatabase } from './schema.js';

export interface RequestedItem {
  readonly sku: string;
  readonly qty: number;
}

export type ReservationResult =
  | { readonly outcome: 'reserved'; readonly items: readonly RequestedItem[] }
  | {
      readonly outcome: 'failed';
      readonly reason: 'unknown_sku' | 'insufficient_stock';
      readonly items: readonly (RequestedItem & {
        readonly available?: number;
        readonly reason?: 'unknown_sku' | 'insufficient_stock';
      })[];
    }
  /** The order has reservation rows already (an order_created of another event id for the same order). */
  | { readonly outcome: 'already_reserved'; readonly items: readonly RequestedItem[] };

/** An order's lines summed per sku, in sku order (the lock order: two orders never wait on each other in a cycle). */
export function sumBySku(items: readonly RequestedItem[]): RequestedItem[] {
  const totals = new Map<string, number>();
  for (const { sku, qty } of items) totals.set(sku, (totals.get(sku) ?? 0) + qty);
  return [...totals].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)).map(([sku, qty]) => ({ sku, qty }));
}

/**
 * Reserves every item of an order, or none: locks each sku's row (FOR UPDATE, in sku order, as the old
 * service did per item), checks what is available, and only when every line fits adds to reserved_qty
 * and records the order's reservation per sku. Runs in the consumer's transaction.
 */
export async function reserveOrder(
  trx: Transaction<InventoryDatabase>,
  orderId: string,
  lines: readonly RequestedItem[],
): Promise<ReservationResult> {
  const wanted = sumBySku(lines);
  const existing = await trx
    .selectFrom('inventory_reservations')
    .select(['sku', 'qty'])
    .where('order_id', '=', orderId)
    .execute();
  if (existing.length > 0) return { outcome: 'already_reserved', items: existing };

  const rows = await trx
    .selectFrom('inventory_items')
    .select(['sku', 'qty_on_hand', 'reserved_qty'])
    .where(
      'sku',
      'in',
      wanted.map((w) => w.sku),
    )
    .orderBy('sku')
    .forUpdate()
    .execute();
  const bySku = new Map(rows.map((r) => [r.sku, r]));
  const checked = wanted.map((w) => {
    const row = bySku.get(w.sku);
    if (row === undefined) return { ...w, available: 0, reason: 'unknown_sku' as const };
    const available = row.qty_on_hand - row.reserved_qty;
    return available >= w.qty
      ? w
      : { ...w, available: Math.max(available, 0), reason: 'insufficient_stock' as const };
  });
  const failed = checked.filter((c) => 'reason' in c);
  if (failed.length > 0) {
    // An unknown sku says more about the order than a shortage does: it is the reason named first.
    const reason = failed.some((f) => f.reason === 'unknown_sku') ? 'unknown_sku' : 'insufficient_stock';
    return { outcome: 'failed', reason, items: checked };
  }
  for (const w of wanted) await changeReserved(trx, w.sku, '+', w.qty);
  await trx
    .insertInto('inventory_reservations')
    .values(wanted.map((w) => ({ order_id: orderId, sku: w.sku, qty: w.qty })))
    .execute();
  return { outcome: 'reserved', items: wanted };
}

/**
 * Gives back what an order reserved and has not released yet (nothing when its reservation failed or
 * was released before). Locks the reservation rows, then the items in sku order.
 */
export async function releaseOrder(
  trx: Transaction<InventoryDatabase>,
  orderId: string,
): Promise<RequestedItem[]> {
  const held = await trx
    .selectFrom('inventory_reservations')
    .select(['sku', 'qty'])
    .where('order_id', '=', orderId)
    .where('released_at', 'is', null)
    .orderBy('sku')
    .forUpdate()
    .execute();
  if (held.length === 0) return [];
  for (const h of held) await changeReserved(trx, h.sku, '-', h.qty);
  await trx
    .updateTable('inventory_reservations')
    .set({ released_at: new Date() })
    .where('order_id', '=', orderId)
    .where('released_at', 'is', null)
    .execute();
  return held;
}

/** Adds `qty` to (`+`) or takes it from (`-`) the reserved quantity of `sku`. */
async function changeReserved(
  trx: Transaction<InventoryDatabase>,
  sku: string,
  op: '+' | '-',
  qty: number,
): Promise<void> {
  await trx
    .updateTable('inventory_items')
    .set((eb) => ({ reserved_qty: eb('reserved_qty', op, qty), updated_at: new Date() }))
    .where('sku', '=', sku)
    .execute();
}

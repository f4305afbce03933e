import { type Kysely, sql } from 'kysely';
import type { InventoryDatabase } from './schema.js';

/** A sku's stock as the API shows it. */
export interface StockLevel {
  readonly sku: string;
  readonly qty_on_hand: number;
  readonly reserved_qty: number;
}

/** Sets a sku's quantity on hand (creating the sku); `created` says which. Reservations stay as they are. */
export async function setStock(
  db: Kysely<InventoryDatabase>,
  sku: string,
  qtyOnHand: number,
): Promise<{ item: StockLevel; created: boolean }> {
  const row = await db
    .insertInto('inventory_items')
    .values({ sku, qty_on_hand: qtyOnHand })
    .onConflict((oc) => oc.column('sku').doUpdateSet({ qty_on_hand: qtyOnHand, updated_at: new Date() }))
    // xmax = 0 only on a freshly inserted row version: the one way to tell insert from update here.
    .returning(['sku', 'qty_on_hand', 'reserved_qty', sql<boolean>`(xmax = 0)`.as('created')])
    .executeTakeFirstOrThrow();
  const { created, ...item } = row;
  return { item, created };
}

export async function findStock(db: Kysely<InventoryDatabase>, sku: string): Promise<StockLevel | undefined> {
  return db
    .selectFrom('inventory_items')
    .select(['sku', 'qty_on_hand', 'reserved_qty'])
    .where('sku', '=', sku)
    .executeTakeFirst();
}

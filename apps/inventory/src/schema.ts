import type { ConsumerTables } from '@orders/consumer';
import type { Database } from '@orders/db';
import type { ColumnType } from 'kysely';

export interface InventoryItemsTable {
  sku: string;
  qty_on_hand: number;
  reserved_qty: ColumnType<number, number | undefined, number>;
  created_at: ColumnType<Date, Date | undefined, never>;
  updated_at: ColumnType<Date, Date | undefined, Date>;
}

export interface InventoryReservationsTable {
  order_id: string;
  sku: string;
  qty: number;
  reserved_at: ColumnType<Date, Date | undefined, never>;
  released_at: ColumnType<Date | null, Date | null | undefined, Date | null>;
}

/** The inventory's database: its stock, the consumer's inbox and dead letters, its own outbox. */
export interface InventoryDatabase extends ConsumerTables, Pick<Database, 'outbox'> {
  inventory_items: InventoryItemsTable;
  inventory_reservations: InventoryReservationsTable;
}

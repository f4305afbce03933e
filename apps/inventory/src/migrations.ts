import { fileURLToPath } from 'node:url';
import { CONSUMER_MIGRATIONS } from '@orders/consumer';
import { type MigrationSource, OUTBOX_MIGRATIONS } from '@orders/db';

/** The inventory's own tables (`apps/inventory/migrations/`), recorded as `inventory/<file>`. */
export const INVENTORY_OWN_MIGRATIONS: MigrationSource = Object.freeze({
  dir: fileURLToPath(new URL('../migrations/', import.meta.url)),
  namespace: 'inventory',
});

/**
 * Everything the inventory's database takes: the outbox's migrations from `migrations/` (so the
 * unchanged relay can publish its events), the consumer package's inbox, its own tables.
 * `outboxDir` overrides where the outbox files are (`MIGRATIONS_DIR` in an image).
 */
export function inventoryMigrationSources(outboxDir?: string): MigrationSource[] {
  return [
    outboxDir ? { ...OUTBOX_MIGRATIONS, dir: outboxDir } : OUTBOX_MIGRATIONS,
    CONSUMER_MIGRATIONS,
    INVENTORY_OWN_MIGRATIONS,
  ];
}

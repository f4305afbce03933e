import { loadInventoryMigrateConfig } from '@orders/config';
import { runMigrateCommand } from '@orders/db';
import { loadConfigOrExit } from '@orders/lifecycle';
import { inventoryMigrationSources } from './migrations.js';

// `pnpm --filter ./apps/inventory migrate`: the inventory database's migrations (outbox, inbox, its
// own tables), configured from the INVENTORY_ variables. MIGRATIONS_DIR says where the outbox's are.
await runMigrateCommand(loadConfigOrExit(loadInventoryMigrateConfig), 'inventory-migrate', (dir) => ({
  sources: inventoryMigrationSources(dir),
}));

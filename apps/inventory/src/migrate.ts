import { ConfigError, loadInventoryMigrateConfig, redactUrl } from '@orders/config';
import { createDatabaseIfMissing, createDb, migrateToLatest } from '@orders/db';
import { createLogger } from '@orders/logger';
import { inventoryMigrationSources } from './migrations.js';

// `pnpm --filter ./apps/inventory migrate`: the inventory database's migrations (outbox, inbox, its
// own tables), configured from the INVENTORY_ variables. MIGRATIONS_DIR says where the outbox's are.
let config: ReturnType<typeof loadInventoryMigrateConfig>;
try {
  config = loadInventoryMigrateConfig();
} catch (err) {
  if (!(err instanceof ConfigError)) throw err;
  console.error(err.message);
  process.exit(2);
}
const logger = createLogger({ name: 'inventory-migrate', level: config.logLevel });

await createDatabaseIfMissing(config.database.url, logger);
const db = createDb(config.database, { logger, applicationName: 'inventory-migrate' });
try {
  const { applied } = await migrateToLatest(db, {
    sources: inventoryMigrationSources(process.env['MIGRATIONS_DIR'] || undefined),
    logger,
  });
  logger.info(
    { database: redactUrl(config.database.url), applied: applied.length },
    applied.length ? 'database migrated' : 'database already up to date',
  );
} catch (err) {
  logger.fatal({ err }, 'migration failed');
  process.exitCode = 1;
} finally {
  await db.destroy();
}

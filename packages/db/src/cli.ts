import { ConfigError, loadMigrateConfig, redactUrl } from '@orders/config';
import { createLogger } from '@orders/logger';
import { createDatabaseIfMissing } from './create-database.js';
import { createDb } from './database.js';
import { DEFAULT_MIGRATIONS_DIR, migrateToLatest } from './migrator.js';

// `pnpm migrate`: applies pending migrations, configured only from the environment.
let config: ReturnType<typeof loadMigrateConfig>;
try {
  config = loadMigrateConfig();
} catch (err) {
  if (!(err instanceof ConfigError)) throw err;
  console.error(err.message);
  process.exit(2);
}
const logger = createLogger({ name: 'migrate', level: config.logLevel });

await createDatabaseIfMissing(config.database.url, logger);
const db = createDb(config.database, { logger, applicationName: 'orders-migrate' });
try {
  const { applied } = await migrateToLatest(db, {
    migrationsDir: process.env['MIGRATIONS_DIR'] ?? DEFAULT_MIGRATIONS_DIR,
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

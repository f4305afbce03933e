import { type MigrateConfig, redactUrl } from '@orders/config';
import { createLogger } from '@orders/logger';
import { createDatabaseIfMissing } from './create-database.js';
import { createDb } from './database.js';
import { type MigrateOptions, migrateToLatest } from './migrator.js';

/**
 * A migrate command (`pnpm migrate`, the inventory's): creates the database when the server answers
 * without it, applies what is pending in one transaction, logs one line, and sets exit code 1 when a
 * migration fails. `options` says which files, given MIGRATIONS_DIR (undefined: the repository's).
 */
export async function runMigrateCommand(
  config: MigrateConfig,
  name: string,
  options: (migrationsDir: string | undefined) => Omit<MigrateOptions, 'logger'>,
): Promise<void> {
  const logger = createLogger({ name, level: config.logLevel });
  await createDatabaseIfMissing(config.database.url, logger);
  const db = createDb(config.database, { logger, applicationName: name });
  try {
    const { applied } = await migrateToLatest(db, { ...options(config.migrationsDir), logger });
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
}

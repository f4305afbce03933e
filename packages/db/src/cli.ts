import { ConfigError, loadMigrateConfig, redactUrl } from '@orders/config';
import { createLogger } from '@orders/logger';
import pg from 'pg';
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

await createDatabaseIfMissing(config.database.url);
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

/**
 * Creates the target database when the server answers but the database does not exist yet, so a
 * fresh PostgreSQL needs no manual step. Anything else (auth, network) is left for the migration's
 * own connection to report.
 */
async function createDatabaseIfMissing(url: string): Promise<void> {
  const probe = new pg.Client({ connectionString: url, connectionTimeoutMillis: 5000 });
  try {
    await probe.connect();
    return;
  } catch (err) {
    if ((err as { code?: string }).code !== '3D000') return;
  } finally {
    await probe.end().catch(() => {});
  }
  const target = new URL(url);
  const name = decodeURIComponent(target.pathname.slice(1));
  target.pathname = '/postgres';
  const admin = new pg.Client({ connectionString: target.toString(), connectionTimeoutMillis: 5000 });
  try {
    await admin.connect();
    await admin.query(`CREATE DATABASE ${pg.escapeIdentifier(name)}`);
    logger.info({ database: name }, 'database created');
  } catch (err) {
    // 42P04: another migrate process created it first.
    if ((err as { code?: string }).code !== '42P04') throw err;
  } finally {
    await admin.end().catch(() => {});
  }
}

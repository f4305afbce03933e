import type { Logger } from '@orders/logger';
import pg from 'pg';

/**
 * Creates the target database when the server answers but the database does not exist yet, so a
 * fresh PostgreSQL needs no manual step. Anything else (auth, network) is left for the migration's
 * own connection to report.
 */
export async function createDatabaseIfMissing(url: string, logger?: Logger): Promise<void> {
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
    logger?.info({ database: name }, 'database created');
  } catch (err) {
    // 42P04: another migrate process created it first.
    if ((err as { code?: string }).code !== '42P04') throw err;
  } finally {
    await admin.end().catch(() => {});
  }
}

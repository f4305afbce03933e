import { createDb, migrateToLatest } from '@orders/db';
import { adminQuery, databaseUrl, uniqueDatabaseName } from './postgres.js';

/**
 * Creates a database named `<prefix>_…` on the server, migrates it to the latest migration and
 * closes every connection to it, so that `CREATE DATABASE … TEMPLATE` can clone it (in milliseconds).
 * Returns its name; the caller drops it.
 */
export async function createMigratedTemplate(adminUrl: string, prefix: string): Promise<string> {
  const template = uniqueDatabaseName(prefix);
  await adminQuery(adminUrl, [`CREATE DATABASE "${template}"`]);
  const db = createDb({
    url: databaseUrl(adminUrl, template),
    poolSize: 1,
    connectTimeoutMs: 5000,
    statementTimeoutMs: 60_000,
  });
  try {
    await migrateToLatest(db);
  } finally {
    // A template must have no connections when it is cloned.
    await db.destroy();
  }
  return template;
}

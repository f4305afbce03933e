import { fileURLToPath } from 'node:url';
import type { MigrationSource } from '@orders/db';

/**
 * The inbox and dead-letter tables, for `migrateToLatest(db, { sources: [...] })` of a consumer's
 * database. Shipped with the package (`migrations/`, beside `src/` and `dist/` alike), recorded as
 * `consumer/<file>`.
 */
export const CONSUMER_MIGRATIONS: MigrationSource = Object.freeze({
  dir: fileURLToPath(new URL('../migrations/', import.meta.url)),
  namespace: 'consumer',
});

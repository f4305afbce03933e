import { createDb, type Db } from '@orders/db';
import { inject } from 'vitest';
import './provided.js';
import { adminQuery, databaseUrl, uniqueDatabaseName } from './postgres.js';

/** A database of one's own, cloned from the run's migrated template. */
export interface TestDatabase {
  readonly name: string;
  readonly url: string;
  /** A Kysely instance on it (pool of 10), closed by `drop()`. */
  readonly db: Db;
  /** The server's maintenance database, for tests that must create or break things outside their database. */
  readonly adminUrl: string;
  drop(): Promise<void>;
}

/**
 * Clones the migrated template into a fresh database for the calling test file. Call it at the top
 * of a file (or in `beforeAll`) and `drop()` it in `afterAll`: files then run in parallel, in any order.
 */
export async function createTestDatabase(options: { poolSize?: number } = {}): Promise<TestDatabase> {
  const adminUrl = inject('testkitPgAdminUrl');
  const template = inject('testkitPgTemplate');
  const name = uniqueDatabaseName('orders_test');
  await adminQuery(adminUrl, [`CREATE DATABASE "${name}" TEMPLATE "${template}"`]);
  const url = databaseUrl(adminUrl, name);
  const db = createDb({
    url,
    poolSize: options.poolSize ?? 10,
    connectTimeoutMs: 5000,
    statementTimeoutMs: 30_000,
  });
  let dropped = false;
  return {
    name,
    url,
    db,
    adminUrl,
    async drop() {
      if (dropped) return;
      dropped = true;
      await db.destroy();
      await adminQuery(adminUrl, [`DROP DATABASE IF EXISTS "${name}" WITH (FORCE)`]);
    },
  };
}

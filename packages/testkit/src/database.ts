import { createDb, type Database, type MigrationSource, migrateToLatest } from '@orders/db';
import type { Kysely } from 'kysely';
import { inject } from 'vitest';
import './provided.js';
import { adminQuery, databaseUrl, uniqueDatabaseName } from './postgres.js';

/** A database of one's own: `DB` its schema, the orders one unless it is a service's own (the inventory's). */
export interface TestDatabaseOf<DB> {
  readonly name: string;
  readonly url: string;
  /** A Kysely instance on it (pool of 10), closed by `drop()`. */
  readonly db: Kysely<DB>;
  /** The server's maintenance database, for tests that must create or break things outside their database. */
  readonly adminUrl: string;
  drop(): Promise<void>;
}

/** A database of one's own, cloned from the run's migrated template. */
export type TestDatabase = TestDatabaseOf<Database>;

/**
 * Clones the migrated template into a fresh database for the calling test file. Call it at the top
 * of a file (or in `beforeAll`) and `drop()` it in `afterAll`: files then run in parallel, in any order.
 */
export async function createTestDatabase(options: { poolSize?: number } = {}): Promise<TestDatabase> {
  const adminUrl = inject('testkitPgAdminUrl');
  const template = inject('testkitPgTemplate');
  const name = uniqueDatabaseName('orders_test');
  await adminQuery(adminUrl, [`CREATE DATABASE "${name}" TEMPLATE "${template}"`]);
  return openDatabase<Database>(adminUrl, name, options.poolSize);
}

/** Creates an empty database (no migration applied), for tests of migrating itself. Drop it in `afterAll`. */
export async function createEmptyTestDatabase<DB = Database>(
  options: { poolSize?: number; prefix?: string } = {},
): Promise<TestDatabaseOf<DB>> {
  const adminUrl = inject('testkitPgAdminUrl');
  const name = uniqueDatabaseName(options.prefix ?? 'svc_test');
  await adminQuery(adminUrl, [`CREATE DATABASE "${name}"`]);
  return openDatabase<DB>(adminUrl, name, options.poolSize);
}

/**
 * Creates an empty database and applies `sources` to it (the way a service's migrate command does),
 * for services with their own database, such as the inventory. Drop it in `afterAll`.
 */
export async function createTestDatabaseFrom<DB>(
  sources: readonly MigrationSource[],
  options: { poolSize?: number; prefix?: string } = {},
): Promise<TestDatabaseOf<DB>> {
  const database = await createEmptyTestDatabase<DB>(options);
  await migrateToLatest(database.db, { sources });
  return database;
}

/** A pool of 10 (or `poolSize`) on the database `name` just created; `drop()` closes it and drops the database, once. */
function openDatabase<DB>(adminUrl: string, name: string, poolSize = 10): TestDatabaseOf<DB> {
  const url = databaseUrl(adminUrl, name);
  const db = createDb<DB>({ url, poolSize, connectTimeoutMs: 5000, statementTimeoutMs: 30_000 });
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

import { createDb, migrateToLatest } from '@orders/db';
import type { TestProject } from 'vitest/node';
import './provided.js';
import { adminQuery, databaseUrl, findPostgres, uniqueDatabaseName } from './postgres.js';

/**
 * vitest globalSetup: one PostgreSQL server per run, one migrated template database that every test
 * file clones (CREATE DATABASE ... TEMPLATE takes milliseconds), dropped when the run ends.
 */
export default async function setup(project: TestProject): Promise<() => Promise<void>> {
  const server = await findPostgres();
  const template = uniqueDatabaseName('orders_tpl');
  await adminQuery(server.adminUrl, [`CREATE DATABASE "${template}"`]);
  const db = createDb({
    url: databaseUrl(server.adminUrl, template),
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
  project.provide('testkitPgAdminUrl', server.adminUrl);
  project.provide('testkitPgTemplate', template);

  return async () => {
    await adminQuery(server.adminUrl, [`DROP DATABASE IF EXISTS "${template}" WITH (FORCE)`]);
    await server.stop();
  };
}

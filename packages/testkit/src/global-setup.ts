import type { TestProject } from 'vitest/node';
import './provided.js';
import { adminQuery, findPostgres } from './postgres.js';
import { createMigratedTemplate } from './template.js';

/**
 * vitest globalSetup: one PostgreSQL server per run, one migrated template database that every test
 * file clones (CREATE DATABASE ... TEMPLATE takes milliseconds), dropped when the run ends.
 */
export default async function setup(project: TestProject): Promise<() => Promise<void>> {
  const server = await findPostgres();
  const template = await createMigratedTemplate(server.adminUrl, 'orders_tpl');
  project.provide('testkitPgAdminUrl', server.adminUrl);
  project.provide('testkitPgTemplate', template);

  return async () => {
    await adminQuery(server.adminUrl, [`DROP DATABASE IF EXISTS "${template}" WITH (FORCE)`]);
    await server.stop();
  };
}

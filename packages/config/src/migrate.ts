import { z } from 'zod';
import { type DatabaseConfig, databaseSchema, resolveDatabase } from './database.js';
import { type Env, logLevel, parse } from './parsers.js';

/** Where the migrate commands read their `.sql` files, when not from the repository's `migrations/`. */
export const migrationsDirShape = { MIGRATIONS_DIR: z.string().min(1).optional() };

export const migrateSchema = databaseSchema.extend({
  LOG_LEVEL: logLevel.default('info'),
  ...migrationsDirShape,
});

/** What the migrate command needs. */
export interface MigrateConfig {
  readonly logLevel: z.infer<typeof logLevel>;
  readonly database: DatabaseConfig;
  /** `MIGRATIONS_DIR`: undefined means the repository's (or the image's) `migrations/`. */
  readonly migrationsDir: string | undefined;
}

/** Reads and validates the migrate command's configuration. */
export function loadMigrateConfig(env: Env = process.env): MigrateConfig {
  const e = parse(migrateSchema, env);
  return Object.freeze({
    logLevel: e.LOG_LEVEL,
    database: resolveDatabase(e),
    migrationsDir: e.MIGRATIONS_DIR,
  });
}

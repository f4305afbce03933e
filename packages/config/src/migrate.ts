import { z } from 'zod';
import { type DatabaseConfig, databaseSchema, resolveDatabase } from './database.js';
import { type Env, logLevel, parse } from './parsers.js';

/** What a migrate command reads besides its database's variables. */
export const migrateShape = {
  LOG_LEVEL: logLevel.default('info'),
  /** Where the migrate commands read their `.sql` files, when not from the repository's `migrations/`. */
  MIGRATIONS_DIR: z.string().min(1).optional(),
};

/** What a migrate command needs: its variables and a database, however that database was read. */
export function resolveMigrate(e: z.infer<z.ZodObject<typeof migrateShape>>, database: DatabaseConfig) {
  return Object.freeze({
    logLevel: e.LOG_LEVEL,
    database,
    /** `MIGRATIONS_DIR`: undefined means the repository's (or the image's) `migrations/`. */
    migrationsDir: e.MIGRATIONS_DIR,
  });
}

export const migrateSchema = databaseSchema
  .extend(migrateShape)
  .transform((e) => resolveMigrate(e, resolveDatabase(e)));

/** What the migrate command needs. */
export type MigrateConfig = z.output<typeof migrateSchema>;

/** Reads and validates the migrate command's configuration. */
export function loadMigrateConfig(env: Env = process.env): MigrateConfig {
  return parse(migrateSchema, env);
}

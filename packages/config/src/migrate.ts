import type { z } from 'zod';
import { type DatabaseConfig, databaseSchema, resolveDatabase } from './database.js';
import { type Env, logLevel, parse } from './parsers.js';

export const migrateSchema = databaseSchema.extend({ LOG_LEVEL: logLevel.default('info') });

/** What the migrate command needs. */
export interface MigrateConfig {
  readonly logLevel: z.infer<typeof logLevel>;
  readonly database: DatabaseConfig;
}

/** Reads and validates the migrate command's configuration. */
export function loadMigrateConfig(env: Env = process.env): MigrateConfig {
  const e = parse(migrateSchema, env);
  return Object.freeze({ logLevel: e.LOG_LEVEL, database: resolveDatabase(e) });
}

import { z } from 'zod';
import { type Env, parse, port, positiveInt } from './parsers.js';

/**
 * The database variables. `DATABASE_URL` wins over the `DB_*`/`POSTGRES_*` parts, as the contract says;
 * `TEST_DATABASE_URL` is not read here (only the test kit knows about it).
 */
export const databaseSchema = z.object({
  DATABASE_URL: z
    .url({ protocol: /^postgres(ql)?$/, error: 'must be a postgres:// or postgresql:// URL' })
    .optional(),
  DB_HOST: z.string().min(1).default('127.0.0.1'),
  DB_PORT: port.default(5432),
  POSTGRES_DB: z.string().min(1).default('orders'),
  POSTGRES_USER: z.string().min(1).default('postgres'),
  POSTGRES_PASSWORD: z.string().optional(),
  DB_POOL_SIZE: positiveInt.max(1000).default(16),
  DB_CONNECT_TIMEOUT_MS: positiveInt.default(3000),
  DB_STATEMENT_TIMEOUT_MS: positiveInt.default(5000),
});

/** How to reach PostgreSQL, resolved from either form of the variables. */
export function resolveDatabase(e: z.infer<typeof databaseSchema>) {
  let url = e.DATABASE_URL;
  if (url === undefined) {
    const u = new URL('postgres://localhost');
    u.hostname = e.DB_HOST;
    u.port = String(e.DB_PORT);
    u.pathname = `/${encodeURIComponent(e.POSTGRES_DB)}`;
    u.username = encodeURIComponent(e.POSTGRES_USER);
    if (e.POSTGRES_PASSWORD !== undefined) u.password = encodeURIComponent(e.POSTGRES_PASSWORD);
    url = u.toString();
  }
  return Object.freeze({
    url,
    poolSize: e.DB_POOL_SIZE,
    connectTimeoutMs: e.DB_CONNECT_TIMEOUT_MS,
    statementTimeoutMs: e.DB_STATEMENT_TIMEOUT_MS,
  });
}

/** How to reach PostgreSQL: what {@link resolveDatabase} makes of the variables. */
export type DatabaseConfig = ReturnType<typeof resolveDatabase>;

/**
 * A database of a service's own, from the same variables as the orders database's with a prefix
 * (`INVENTORY_DATABASE_URL`, or `INVENTORY_DB_HOST`, `INVENTORY_POSTGRES_DB`, ...). Problems name the
 * prefixed variables.
 */
export function loadPrefixedDatabase(
  env: Env,
  prefix: string,
  defaults: { readonly database: string; readonly poolSize: number },
): DatabaseConfig {
  const picked: Record<string, string | undefined> = {};
  for (const key of Object.keys(databaseSchema.shape)) picked[key] = env[`${prefix}${key}`];
  const schema = databaseSchema.extend({
    POSTGRES_DB: z.string().min(1).default(defaults.database),
    DB_POOL_SIZE: positiveInt.max(1000).default(defaults.poolSize),
  });
  return resolveDatabase(parse(schema, picked, prefix));
}

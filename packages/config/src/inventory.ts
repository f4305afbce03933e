import { z } from 'zod';
import { authShape, checkAuth, resolveAuth } from './auth.js';
import { consumerShape, resolveConsumer } from './consumer.js';
import { loadPrefixedDatabase } from './database.js';
import { type MigrateConfig, migrateShape, resolveMigrate } from './migrate.js';
import { checkNats, natsShape, resolveNats } from './nats.js';
import { ConfigError, collect, type Env, logLevel, parse, port, positiveInt, streamName } from './parsers.js';

/** The inventory's variables but its database's (those have a prefix: {@link INVENTORY_DATABASE}). */
export const inventorySchema = z
  .object({
    SERVICE_NAME: z.string().min(1).default('inventory-service'),
    INVENTORY_PORT: port.default(8003),
    HOST: z.string().min(1).default('0.0.0.0'),
    LOG_LEVEL: logLevel.default('info'),
    INVENTORY_STREAM: streamName.default('inventory'),
    SHUTDOWN_TIMEOUT_MS: positiveInt.default(10_000),
    ...natsShape,
    ...consumerShape,
    ...authShape,
  })
  .superRefine((v, ctx) => {
    checkNats(v, ctx);
    checkAuth(v, ctx);
    if (v.INVENTORY_STREAM === v.NATS_STREAM) {
      ctx.addIssue({
        code: 'custom',
        path: ['INVENTORY_STREAM'],
        message: 'must differ from NATS_STREAM: the inventory would consume its own events',
      });
    }
    if (v.CONSUMER_RETRY_MAX_MS < v.CONSUMER_RETRY_DELAY_MS) {
      ctx.addIssue({
        code: 'custom',
        path: ['CONSUMER_RETRY_MAX_MS'],
        message: 'must be at least CONSUMER_RETRY_DELAY_MS',
      });
    }
  })
  .transform((e) => ({
    serviceName: e.SERVICE_NAME,
    host: e.HOST,
    port: e.INVENTORY_PORT,
    logLevel: e.LOG_LEVEL,
    nats: Object.freeze(resolveNats(e)),
    consumer: resolveConsumer(e, 'inventory'),
    /** The subject prefix of its own events (`inventory.stock_reserved`): the stream its relay publishes to. */
    eventsStream: e.INVENTORY_STREAM,
    shutdownTimeoutMs: e.SHUTDOWN_TIMEOUT_MS,
    /** Undefined: authentication is off; on, reading needs inventory:read, PUT inventory:write. */
    auth: resolveAuth(e),
    /** When set, `GET /metrics` needs `Authorization: Bearer <METRICS_TOKEN>`. Never logged. */
    metricsToken: e.METRICS_TOKEN,
  }));

export const INVENTORY_DATABASE = { database: 'inventory', poolSize: 8 } as const;

/** Reads and validates the inventory service's configuration. Throws one {@link ConfigError} naming every bad variable. */
export function loadInventoryConfig(env: Env = process.env) {
  const [e, database] = collect(
    () => parse(inventorySchema, env),
    () => loadPrefixedDatabase(env, 'INVENTORY_', INVENTORY_DATABASE),
  );
  return Object.freeze({
    ...e,
    /** Its own database (`INVENTORY_DATABASE_URL` or the `INVENTORY_DB_*` parts; database `inventory`). */
    database,
  });
}

/** The inventory service (apps/inventory): its HTTP API, its consumer of the orders stream, its database. */
export type InventoryConfig = ReturnType<typeof loadInventoryConfig>;

/** What the inventory's migrate command needs: its database (the `INVENTORY_` variables) and the log level. */
export function loadInventoryMigrateConfig(env: Env = process.env): MigrateConfig {
  const [e, database] = collect(
    () => parse(z.object(migrateShape), env),
    () => loadPrefixedDatabase(env, 'INVENTORY_', INVENTORY_DATABASE),
  );
  return resolveMigrate(e, database);
}

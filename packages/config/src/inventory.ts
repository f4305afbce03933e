import { z } from 'zod';
import { type AuthConfig, authShape, checkAuth, resolveAuth } from './auth.js';
import { type ConsumerConfig, consumerShape } from './consumer.js';
import { type DatabaseConfig, loadPrefixedDatabase } from './database.js';
import { type MigrateConfig, migrationsDirShape } from './migrate.js';
import { checkNats, type NatsConnectionConfig, natsShape, resolveNats } from './nats.js';
import { ConfigError, collect, type Env, logLevel, parse, port, positiveInt, streamName } from './parsers.js';

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
  });

/** The inventory service (apps/inventory): its HTTP API, its consumer of the orders stream, its database. */
export interface InventoryConfig {
  readonly serviceName: string;
  readonly host: string;
  readonly port: number;
  readonly logLevel: z.infer<typeof logLevel>;
  /** Its own database (`INVENTORY_DATABASE_URL` or the `INVENTORY_DB_*` parts; database `inventory`). */
  readonly database: DatabaseConfig;
  readonly nats: NatsConnectionConfig;
  readonly consumer: ConsumerConfig;
  /** The subject prefix of its own events (`inventory.stock_reserved`): the stream its relay publishes to. */
  readonly eventsStream: string;
  readonly shutdownTimeoutMs: number;
  /** Undefined: authentication is off; on, reading needs inventory:read, PUT inventory:write. */
  readonly auth: AuthConfig | undefined;
  /** When set, `GET /metrics` needs `Authorization: Bearer <METRICS_TOKEN>`. Never logged. */
  readonly metricsToken: string | undefined;
}

export const INVENTORY_DATABASE = { database: 'inventory', poolSize: 8 } as const;

/** Reads and validates the inventory service's configuration. Throws one {@link ConfigError} naming every bad variable. */
export function loadInventoryConfig(env: Env = process.env): InventoryConfig {
  const [e, database] = collect(
    () => parse(inventorySchema, env),
    () => loadPrefixedDatabase(env, 'INVENTORY_', INVENTORY_DATABASE),
  );
  return Object.freeze({
    serviceName: e.SERVICE_NAME,
    host: e.HOST,
    port: e.INVENTORY_PORT,
    logLevel: e.LOG_LEVEL,
    database,
    nats: Object.freeze(resolveNats(e)),
    consumer: Object.freeze({
      name: e.CONSUMER_NAME ?? 'inventory',
      stream: e.NATS_STREAM,
      filterSubject: `${e.NATS_STREAM}.>`,
      ackWaitMs: e.CONSUMER_ACK_WAIT_MS,
      maxDeliver: e.CONSUMER_MAX_DELIVER,
      retryDelayMs: e.CONSUMER_RETRY_DELAY_MS,
      retryMaxMs: e.CONSUMER_RETRY_MAX_MS,
      inboxRetentionMs: e.INBOX_RETENTION,
      pruneIntervalMs: e.INBOX_PRUNE_INTERVAL_MS,
    }),
    eventsStream: e.INVENTORY_STREAM,
    shutdownTimeoutMs: e.SHUTDOWN_TIMEOUT_MS,
    auth: resolveAuth(e),
    metricsToken: e.METRICS_TOKEN,
  });
}

/** What the inventory's migrate command needs: its database (the `INVENTORY_` variables) and the log level. */
export function loadInventoryMigrateConfig(env: Env = process.env): MigrateConfig {
  const [e, database] = collect(
    () => parse(z.object({ LOG_LEVEL: logLevel.default('info'), ...migrationsDirShape }), env),
    () => loadPrefixedDatabase(env, 'INVENTORY_', INVENTORY_DATABASE),
  );
  return Object.freeze({ logLevel: e.LOG_LEVEL, database, migrationsDir: e.MIGRATIONS_DIR });
}

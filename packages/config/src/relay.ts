import { z } from 'zod';
import { databaseSchema, resolveDatabase } from './database.js';
import { checkNats, natsShape, resolveNats } from './nats.js';
import {
  booleanFlag,
  ConfigError,
  duration,
  type Env,
  type LogLevel,
  logLevel,
  parse,
  port,
  positiveInt,
} from './parsers.js';

/** The relay's schema, its log level `defaultLogLevel` when LOG_LEVEL is unset. */
const relaySchemaFor = (defaultLogLevel: LogLevel) =>
  databaseSchema
    .extend({
      SERVICE_NAME: z.string().min(1).default('orders-service'),
      LOG_LEVEL: logLevel.default(defaultLogLevel),
      DB_POOL_SIZE: positiveInt.max(100).default(4),
      ...natsShape,
      NATS_STREAM_REPLICAS: positiveInt.max(5).default(1),
      RELAY_PORT: port.default(8002),
      HOST: z.string().min(1).default('0.0.0.0'),
      // 2,000, not 500: PostgreSQL does 6.0-6.9 instead of 9.1-10.3 µs per event, and a drain of 100,000
      // rows from the first publish runs at 26.2-30.5k instead of 21.5-27.4k events/s (4 alternating runs
      // each on a quiet machine; ~1.3x when the machine was loaded); 4,000 was no better.
      // Batches are only as large as what has committed, so a steady load's latency is unchanged.
      RELAY_BATCH_SIZE: positiveInt.max(10_000).default(2000),
      RELAY_POLL_INTERVAL_MS: positiveInt.default(1000),
      RELAY_MAX_ATTEMPTS: positiveInt.max(1000).default(10),
      RELAY_LEASE_MS: positiveInt.min(1000).default(30_000),
      RELAY_PUBLISH_TIMEOUT_MS: positiveInt.default(5000),
      RELAY_RETRY_DELAY_MS: positiveInt.default(1000),
      RELAY_BACKOFF_MAX_MS: positiveInt.default(10_000),
      RELAY_DUPLICATE_WINDOW_MS: positiveInt.min(100).default(120_000),
      RELAY_LISTEN: booleanFlag.default(true),
      OUTBOX_RETENTION: duration.default(7 * 86_400_000),
      OUTBOX_PRUNE_INTERVAL_MS: positiveInt.min(1000).default(600_000),
      SHUTDOWN_TIMEOUT_MS: positiveInt.default(10_000),
    })
    .superRefine((v, ctx) => {
      checkNats(v, ctx);
      if (v.RELAY_LEASE_MS < 2 * v.RELAY_PUBLISH_TIMEOUT_MS) {
        ctx.addIssue({
          code: 'custom',
          path: ['RELAY_LEASE_MS'],
          message: 'must be at least twice RELAY_PUBLISH_TIMEOUT_MS, or a slow batch outlives its lease',
        });
      }
    })
    .transform((e) =>
      Object.freeze({
        serviceName: e.SERVICE_NAME,
        logLevel: e.LOG_LEVEL,
        host: e.HOST,
        port: e.RELAY_PORT,
        database: resolveDatabase(e),
        nats: Object.freeze({
          ...resolveNats(e),
          stream: e.NATS_STREAM,
          /** Replicas of the stream when the relay creates it (a JetStream cluster: 3). */
          replicas: e.NATS_STREAM_REPLICAS,
        }),
        batchSize: e.RELAY_BATCH_SIZE,
        pollIntervalMs: e.RELAY_POLL_INTERVAL_MS,
        maxAttempts: e.RELAY_MAX_ATTEMPTS,
        leaseMs: e.RELAY_LEASE_MS,
        publishTimeoutMs: e.RELAY_PUBLISH_TIMEOUT_MS,
        retryDelayMs: e.RELAY_RETRY_DELAY_MS,
        backoffMaxMs: e.RELAY_BACKOFF_MAX_MS,
        duplicateWindowMs: e.RELAY_DUPLICATE_WINDOW_MS,
        listen: e.RELAY_LISTEN,
        /** Published rows older than this are deleted by the relay in small batches; 0 keeps them forever. */
        retentionMs: e.OUTBOX_RETENTION,
        pruneIntervalMs: e.OUTBOX_PRUNE_INTERVAL_MS,
        shutdownTimeoutMs: e.SHUTDOWN_TIMEOUT_MS,
      }),
    );

export const relaySchema = relaySchemaFor('info');

/** Everything the relay process needs, frozen. */
export type RelayConfig = z.output<typeof relaySchema>;

/** Reads and validates the relay's configuration. Throws one {@link ConfigError} naming every bad variable. */
export function loadRelayConfig(env: Env = process.env): RelayConfig {
  return parse(relaySchema, env);
}

/**
 * The relay's configuration for its operator CLI (status, replay, ...): the same variables, but the
 * log level is `warn` unless LOG_LEVEL says otherwise, so that a command's output is not buried in logs.
 */
export function loadRelayCliConfig(env: Env = process.env): RelayConfig {
  return parse(relaySchemaFor('warn'), env);
}

import { z } from 'zod';
import { authShape, checkAuth, resolveAuth } from './auth.js';
import { databaseSchema, resolveDatabase } from './database.js';
import {
  booleanFlag,
  ConfigError,
  duration,
  type Env,
  logLevel,
  parse,
  port,
  positiveInt,
  streamName,
} from './parsers.js';

export const apiSchema = databaseSchema
  .extend({
    SERVICE_NAME: z.string().min(1).default('orders-service'),
    SERVICE_PORT: port.default(8001),
    NATS_STREAM: streamName,
    OUTBOX_NOTIFY: z.enum(['after-commit', 'in-transaction', 'off']).default('after-commit'),
    HOST: z.string().min(1).default('0.0.0.0'),
    LOG_LEVEL: logLevel.default('info'),
    BODY_LIMIT_BYTES: positiveInt.default(256 * 1024),
    MAX_ITEMS_PER_ORDER: positiveInt.max(10_000).default(500),
    MAX_METADATA_BYTES: positiveInt.default(16 * 1024),
    IDEMPOTENCY_TTL: duration.default(24 * 3_600_000),
    RATE_LIMIT_ORDERS_PER_MINUTE: z.coerce.number().int().min(0).default(0),
    RATE_LIMIT_BURST: positiveInt.optional(),
    TRUST_PROXY: booleanFlag.default(false),
    TRUST_PROXY_HOPS: positiveInt.max(100).optional(),
    SHUTDOWN_TIMEOUT_MS: positiveInt.default(10_000),
    ...authShape,
  })
  .superRefine((v, ctx) => {
    // A hop count without TRUST_PROXY would be silently ignored: the operator meant something.
    if (v.TRUST_PROXY_HOPS !== undefined && !v.TRUST_PROXY) {
      ctx.addIssue({
        code: 'custom',
        path: ['TRUST_PROXY_HOPS'],
        message: 'only applies with TRUST_PROXY=true',
      });
    }
    checkAuth(v, ctx);
  })
  .transform((e) =>
    Object.freeze({
      serviceName: e.SERVICE_NAME,
      host: e.HOST,
      port: e.SERVICE_PORT,
      logLevel: e.LOG_LEVEL,
      database: resolveDatabase(e),
      /** `NATS_STREAM`: the API never connects to NATS, but it names the subjects of the events it writes. */
      stream: e.NATS_STREAM,
      /**
       * How the relay is woken: a coalesced NOTIFY after each commit (default), the outbox trigger's
       * NOTIFY inside each transaction (costs a global commit lock per transaction), or none (poll only).
       */
      outboxNotify: e.OUTBOX_NOTIFY,
      limits: Object.freeze({
        bodyBytes: e.BODY_LIMIT_BYTES,
        itemsPerOrder: e.MAX_ITEMS_PER_ORDER,
        metadataBytes: e.MAX_METADATA_BYTES,
      }),
      /** How long an Idempotency-Key is remembered (IDEMPOTENCY_TTL, default 24 h). */
      idempotencyTtlMs: e.IDEMPOTENCY_TTL,
      /**
       * POST /orders per client and minute (0: off), its burst, whether X-Forwarded-For names the client,
       * and how many trusted proxies append to it (the client is that many entries from the right).
       */
      rateLimit: Object.freeze({
        perMinute: e.RATE_LIMIT_ORDERS_PER_MINUTE,
        ...(e.RATE_LIMIT_BURST !== undefined ? { burst: e.RATE_LIMIT_BURST } : {}),
        trustProxy: e.TRUST_PROXY,
        trustProxyHops: e.TRUST_PROXY_HOPS ?? 1,
      }),
      shutdownTimeoutMs: e.SHUTDOWN_TIMEOUT_MS,
      /** Undefined: authentication is off (no AUTH_* variable set), as before issue 17. */
      auth: resolveAuth(e),
      /** When set, `GET /metrics` needs `Authorization: Bearer <METRICS_TOKEN>`. Never logged. */
      metricsToken: e.METRICS_TOKEN,
    }),
  );

/** Everything the API process needs, frozen. */
export type ApiConfig = z.output<typeof apiSchema>;

/** Reads and validates the API's configuration. Throws one {@link ConfigError} naming every bad variable. */
export function loadApiConfig(env: Env = process.env): ApiConfig {
  return parse(apiSchema, env);
}

import { readFileSync } from 'node:fs';
import { z } from 'zod';

/** Thrown when the environment does not describe a runnable process. Lists every bad variable. */
export class ConfigError extends Error {
  override name = 'ConfigError';
  constructor(
    readonly problems: readonly string[],
    options?: ErrorOptions,
  ) {
    super(`invalid configuration: ${problems.join('; ')}`, options);
  }
}

/** The environment as the process received it: every value a string or absent. */
export type Env = Readonly<Record<string, string | undefined>>;

const port = z.coerce.number().int().min(1).max(65535);
const streamName = z
  .string()
  .regex(/^[A-Za-z0-9_-]+$/, 'must be letters, digits, "_" or "-" (it is also the subject prefix)')
  .default('orders');
const positiveInt = z.coerce.number().int().positive();
const logLevel = z.enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent']);

const DURATION_UNITS: Readonly<Record<string, number>> = {
  ms: 1,
  s: 1000,
  m: 60_000,
  h: 3_600_000,
  d: 86_400_000,
  w: 604_800_000,
};

/**
 * Milliseconds in a duration written as a number and a unit (`500ms`, `90s`, `30m`, `12h`, `7d`, `2w`),
 * or a sum of them (`1h30m`). Throws a RangeError naming the accepted form for anything else.
 */
export function parseDuration(text: string): number {
  const trimmed = text.trim();
  const part = /(\d+(?:\.\d+)?)(ms|s|m|h|d|w)/gy;
  let total = 0;
  let matched = 0;
  for (let m = part.exec(trimmed); m !== null; m = part.exec(trimmed)) {
    total += Number(m[1]) * (DURATION_UNITS[m[2] ?? ''] ?? Number.NaN);
    matched = part.lastIndex;
  }
  if (trimmed === '' || matched !== trimmed.length || !Number.isFinite(total)) {
    throw new RangeError(`not a duration: ${JSON.stringify(text)} (use e.g. 90s, 30m, 12h, 7d, 1h30m)`);
  }
  return Math.round(total);
}

/** A duration variable: `7d`, `12h`, ...; `off` (or `0`) gives 0, meaning disabled. */
const duration = z.string().transform((v, ctx) => {
  if (v === 'off' || v === '0') return 0;
  try {
    return parseDuration(v);
  } catch {
    ctx.addIssue({ code: 'custom', message: 'must be a duration such as 90s, 30m, 12h or 7d, or off' });
    return z.NEVER;
  }
});

/**
 * The database variables. `DATABASE_URL` wins over the `DB_*`/`POSTGRES_*` parts, as the contract says;
 * `TEST_DATABASE_URL` is not read here (only the test kit knows about it).
 */
const databaseSchema = z.object({
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
export interface DatabaseConfig {
  readonly url: string;
  readonly poolSize: number;
  readonly connectTimeoutMs: number;
  readonly statementTimeoutMs: number;
}

const booleanFlag = z
  .enum(['true', 'false', '1', '0', 'yes', 'no'], { error: 'must be true or false' })
  .transform((v) => v === 'true' || v === '1' || v === 'yes');

/** Bearer authentication and the /metrics token: shared by every service with an HTTP API. */
const authShape = {
  AUTH_JWKS_URL: z.url({ protocol: /^https?$/, error: 'must be an http:// or https:// URL' }).optional(),
  AUTH_ISSUER: z.string().min(1).optional(),
  AUTH_AUDIENCE: z.string().min(1).optional(),
  AUTH_CLOCK_TOLERANCE_S: z.coerce.number().int().min(0).max(300).default(5),
  METRICS_TOKEN: z.string().min(16, 'must be at least 16 characters').optional(),
};
type AuthVariables = { [K in (typeof AUTH_VARIABLES)[number]]?: string | undefined };

/** All three AUTH_* variables or none; an audience list that names none is refused. */
function checkAuth(v: AuthVariables, ctx: z.RefinementCtx): void {
  if (v.AUTH_AUDIENCE !== undefined && !v.AUTH_AUDIENCE.split(',').some((a) => a.trim() !== '')) {
    ctx.addIssue({ code: 'custom', path: ['AUTH_AUDIENCE'], message: 'names no audience' });
  }
  // Two of the three would leave the service open while the operator believes it closed.
  const set = AUTH_VARIABLES.filter((name) => v[name] !== undefined);
  if (set.length > 0 && set.length < AUTH_VARIABLES.length) {
    for (const name of AUTH_VARIABLES.filter((n) => v[n] === undefined)) {
      ctx.addIssue({
        code: 'custom',
        path: [name],
        message: `is required when ${set.join(' and ')} ${set.length === 1 ? 'is' : 'are'} set (all three or none)`,
      });
    }
  }
}

/** The checked AUTH_* variables as an {@link AuthConfig}, or undefined when authentication is off. */
function resolveAuth(e: AuthVariables & { AUTH_CLOCK_TOLERANCE_S: number }): AuthConfig | undefined {
  if (e.AUTH_JWKS_URL === undefined || e.AUTH_ISSUER === undefined || e.AUTH_AUDIENCE === undefined)
    return undefined;
  return Object.freeze({
    jwksUrl: e.AUTH_JWKS_URL,
    issuer: e.AUTH_ISSUER,
    audience: Object.freeze(
      e.AUTH_AUDIENCE.split(',')
        .map((a) => a.trim())
        .filter((a) => a !== ''),
    ),
    clockToleranceSeconds: e.AUTH_CLOCK_TOLERANCE_S,
  });
}

const apiSchema = databaseSchema.extend({
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
});

/** The three variables that switch bearer authentication on: all of them, or none. */
const AUTH_VARIABLES = ['AUTH_JWKS_URL', 'AUTH_ISSUER', 'AUTH_AUDIENCE'] as const;

/** Bearer JWT authentication: whose tokens, for which audience, checked with which keys. */
export interface AuthConfig {
  readonly jwksUrl: string;
  readonly issuer: string;
  /** `AUTH_AUDIENCE`, comma separated: a token must name one of them in `aud`. */
  readonly audience: readonly string[];
  readonly clockToleranceSeconds: number;
}

/** Everything the API process needs, frozen. */
export interface ApiConfig {
  readonly serviceName: string;
  readonly host: string;
  readonly port: number;
  readonly logLevel: z.infer<typeof logLevel>;
  readonly database: DatabaseConfig;
  /** `NATS_STREAM`: the API never connects to NATS, but it names the subjects of the events it writes. */
  readonly stream: string;
  /**
   * How the relay is woken: a coalesced NOTIFY after each commit (default), the outbox trigger's
   * NOTIFY inside each transaction (costs a global commit lock per transaction), or none (poll only).
   */
  readonly outboxNotify: 'after-commit' | 'in-transaction' | 'off';
  readonly limits: {
    readonly bodyBytes: number;
    readonly itemsPerOrder: number;
    readonly metadataBytes: number;
  };
  /** How long an Idempotency-Key is remembered (IDEMPOTENCY_TTL, default 24 h). */
  readonly idempotencyTtlMs: number;
  /**
   * POST /orders per client and minute (0: off), its burst, whether X-Forwarded-For names the client,
   * and how many trusted proxies append to it (the client is that many entries from the right).
   */
  readonly rateLimit: {
    readonly perMinute: number;
    readonly burst?: number;
    readonly trustProxy: boolean;
    readonly trustProxyHops: number;
  };
  readonly shutdownTimeoutMs: number;
  /** Undefined: authentication is off (no AUTH_* variable set), as before issue 17. */
  readonly auth: AuthConfig | undefined;
  /** When set, `GET /metrics` needs `Authorization: Bearer <METRICS_TOKEN>`. Never logged. */
  readonly metricsToken: string | undefined;
}

/** How to reach NATS: shared by the relay and every consumer service. */
const natsShape = {
  NATS_URL: z.string().min(1).default('nats://127.0.0.1:4222'),
  NATS_STREAM: streamName,
  NATS_USER: z.string().optional(),
  NATS_PASSWORD: z.string().optional(),
  NATS_TOKEN: z.string().optional(),
  NATS_NKEY_SEED: z
    .string()
    .regex(/^SU[A-Z2-7]+$/, 'must be a user nkey seed (SU...)')
    .optional(),
  NATS_NKEY_SEED_FILE: z.string().min(1).optional(),
  NATS_TLS: booleanFlag.optional(),
  NATS_TLS_CA_FILE: z.string().min(1).optional(),
  NATS_TLS_CERT_FILE: z.string().min(1).optional(),
  NATS_TLS_KEY_FILE: z.string().min(1).optional(),
};

/** How a process connects to NATS (the relay, a consumer): servers, auth, TLS. Secrets never logged. */
export interface NatsConnectionConfig {
  readonly url: string;
  readonly user?: string;
  readonly password?: string;
  readonly token?: string;
  /** A user nkey seed (from NATS_NKEY_SEED or the file NATS_NKEY_SEED_FILE names). */
  readonly nkeySeed?: string;
  /** TLS to NATS: required when set; a CA for a private one; a client certificate for mutual TLS. */
  readonly tls?: { readonly caFile?: string; readonly certFile?: string; readonly keyFile?: string };
}

type NatsVars = z.infer<z.ZodObject<typeof natsShape>>;

/** The checks across NATS variables, for a schema's superRefine. */
function checkNats(v: NatsVars, ctx: z.RefinementCtx): void {
  if (v.NATS_USER !== undefined && v.NATS_PASSWORD === undefined) {
    ctx.addIssue({ code: 'custom', path: ['NATS_PASSWORD'], message: 'is required when NATS_USER is set' });
  }
  if ((v.NATS_TLS_CERT_FILE === undefined) !== (v.NATS_TLS_KEY_FILE === undefined)) {
    ctx.addIssue({
      code: 'custom',
      path: [v.NATS_TLS_CERT_FILE === undefined ? 'NATS_TLS_CERT_FILE' : 'NATS_TLS_KEY_FILE'],
      message: 'NATS_TLS_CERT_FILE and NATS_TLS_KEY_FILE go together (a client certificate and its key)',
    });
  }
  if (v.NATS_NKEY_SEED !== undefined && v.NATS_NKEY_SEED_FILE !== undefined) {
    ctx.addIssue({
      code: 'custom',
      path: ['NATS_NKEY_SEED_FILE'],
      message: 'set NATS_NKEY_SEED or NATS_NKEY_SEED_FILE, not both',
    });
  }
}

function resolveNats(e: NatsVars): NatsConnectionConfig {
  return {
    url: e.NATS_URL,
    ...(e.NATS_USER !== undefined ? { user: e.NATS_USER } : {}),
    ...(e.NATS_PASSWORD !== undefined ? { password: e.NATS_PASSWORD } : {}),
    ...(e.NATS_TOKEN !== undefined ? { token: e.NATS_TOKEN } : {}),
    ...nkey(e.NATS_NKEY_SEED, e.NATS_NKEY_SEED_FILE),
    ...(e.NATS_TLS || e.NATS_TLS_CA_FILE || e.NATS_TLS_CERT_FILE
      ? {
          tls: Object.freeze({
            ...(e.NATS_TLS_CA_FILE ? { caFile: e.NATS_TLS_CA_FILE } : {}),
            ...(e.NATS_TLS_CERT_FILE ? { certFile: e.NATS_TLS_CERT_FILE } : {}),
            ...(e.NATS_TLS_KEY_FILE ? { keyFile: e.NATS_TLS_KEY_FILE } : {}),
          }),
        }
      : {}),
  };
}

const relaySchema = databaseSchema.extend({
  SERVICE_NAME: z.string().min(1).default('orders-service'),
  LOG_LEVEL: logLevel.default('info'),
  DB_POOL_SIZE: positiveInt.max(100).default(4),
  ...natsShape,
  NATS_STREAM_REPLICAS: positiveInt.max(5).default(1),
  RELAY_PORT: port.default(8002),
  HOST: z.string().min(1).default('0.0.0.0'),
  RELAY_BATCH_SIZE: positiveInt.max(10_000).default(500),
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
});

/** Everything the relay process needs, frozen. */
export interface RelayConfig {
  readonly serviceName: string;
  readonly logLevel: z.infer<typeof logLevel>;
  readonly host: string;
  readonly port: number;
  readonly database: DatabaseConfig;
  readonly nats: {
    readonly url: string;
    readonly stream: string;
    readonly user?: string;
    readonly password?: string;
    readonly token?: string;
    /** A user nkey seed (from NATS_NKEY_SEED or the file NATS_NKEY_SEED_FILE names). */
    readonly nkeySeed?: string;
    /** TLS to NATS: required when set; a CA for a private one; a client certificate for mutual TLS. */
    readonly tls?: { readonly caFile?: string; readonly certFile?: string; readonly keyFile?: string };
    /** Replicas of the stream when the relay creates it (a JetStream cluster: 3). */
    readonly replicas: number;
  };
  readonly batchSize: number;
  readonly pollIntervalMs: number;
  readonly maxAttempts: number;
  readonly leaseMs: number;
  readonly publishTimeoutMs: number;
  readonly retryDelayMs: number;
  readonly backoffMaxMs: number;
  readonly duplicateWindowMs: number;
  readonly listen: boolean;
  /** Published rows older than this are deleted by the relay in small batches; 0 keeps them forever. */
  readonly retentionMs: number;
  readonly pruneIntervalMs: number;
  readonly shutdownTimeoutMs: number;
}

const migrateSchema = databaseSchema.extend({ LOG_LEVEL: logLevel.default('info') });

/** What the migrate command needs. */
export interface MigrateConfig {
  readonly logLevel: z.infer<typeof logLevel>;
  readonly database: DatabaseConfig;
}

function parse<S extends z.ZodType>(schema: S, env: Env, prefix = ''): z.infer<S> {
  // Empty strings count as unset: `FOO=` in a compose file or shell means "no value", not "invalid".
  const cleaned = Object.fromEntries(Object.entries(env).filter(([, v]) => v !== undefined && v !== ''));
  const result = schema.safeParse(cleaned);
  if (!result.success) {
    const problems = result.error.issues.map((issue) => {
      const variable = issue.path.length ? `${prefix}${issue.path.join('.')}` : '(environment)';
      // Never echo the value: it may be a secret.
      return `${variable}: ${issue.message}`;
    });
    throw new ConfigError(problems, { cause: result.error });
  }
  return result.data;
}

function resolveDatabase(e: z.infer<typeof databaseSchema>): DatabaseConfig {
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

/** Reads and validates the API's configuration. Throws one {@link ConfigError} naming every bad variable. */
export function loadApiConfig(env: Env = process.env): ApiConfig {
  const e = parse(
    apiSchema.superRefine((v, ctx) => {
      // A hop count without TRUST_PROXY would be silently ignored: the operator meant something.
      if (v.TRUST_PROXY_HOPS !== undefined && !v.TRUST_PROXY) {
        ctx.addIssue({
          code: 'custom',
          path: ['TRUST_PROXY_HOPS'],
          message: 'only applies with TRUST_PROXY=true',
        });
      }
      checkAuth(v, ctx);
    }),
    env,
  );
  return Object.freeze({
    serviceName: e.SERVICE_NAME,
    host: e.HOST,
    port: e.SERVICE_PORT,
    logLevel: e.LOG_LEVEL,
    database: resolveDatabase(e),
    stream: e.NATS_STREAM,
    outboxNotify: e.OUTBOX_NOTIFY,
    limits: Object.freeze({
      bodyBytes: e.BODY_LIMIT_BYTES,
      itemsPerOrder: e.MAX_ITEMS_PER_ORDER,
      metadataBytes: e.MAX_METADATA_BYTES,
    }),
    idempotencyTtlMs: e.IDEMPOTENCY_TTL,
    rateLimit: Object.freeze({
      perMinute: e.RATE_LIMIT_ORDERS_PER_MINUTE,
      ...(e.RATE_LIMIT_BURST !== undefined ? { burst: e.RATE_LIMIT_BURST } : {}),
      trustProxy: e.TRUST_PROXY,
      trustProxyHops: e.TRUST_PROXY_HOPS ?? 1,
    }),
    shutdownTimeoutMs: e.SHUTDOWN_TIMEOUT_MS,
    auth: resolveAuth(e),
    metricsToken: e.METRICS_TOKEN,
  });
}

/** Reads and validates the relay's configuration. Throws one {@link ConfigError} naming every bad variable. */
export function loadRelayConfig(env: Env = process.env): RelayConfig {
  const e = parse(
    relaySchema.superRefine((v, ctx) => {
      checkNats(v, ctx);
      if (v.RELAY_LEASE_MS < 2 * v.RELAY_PUBLISH_TIMEOUT_MS) {
        ctx.addIssue({
          code: 'custom',
          path: ['RELAY_LEASE_MS'],
          message: 'must be at least twice RELAY_PUBLISH_TIMEOUT_MS, or a slow batch outlives its lease',
        });
      }
    }),
    env,
  );
  return Object.freeze({
    serviceName: e.SERVICE_NAME,
    logLevel: e.LOG_LEVEL,
    host: e.HOST,
    port: e.RELAY_PORT,
    database: resolveDatabase(e),
    nats: Object.freeze({
      ...resolveNats(e),
      stream: e.NATS_STREAM,
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
    retentionMs: e.OUTBOX_RETENTION,
    pruneIntervalMs: e.OUTBOX_PRUNE_INTERVAL_MS,
    shutdownTimeoutMs: e.SHUTDOWN_TIMEOUT_MS,
  });
}

/** The nkey seed, from the variable or read from the file (a missing or malformed file is a ConfigError). */
function nkey(seed: string | undefined, file: string | undefined): { nkeySeed?: string } {
  if (seed !== undefined) return { nkeySeed: seed };
  if (file === undefined) return {};
  let text: string;
  try {
    text = readFileSync(file, 'utf8').trim();
  } catch (err) {
    throw new ConfigError([
      `NATS_NKEY_SEED_FILE: cannot read ${file} (${(err as NodeJS.ErrnoException).code ?? 'error'})`,
    ]);
  }
  if (!/^SU[A-Z2-7]+$/.test(text))
    throw new ConfigError([`NATS_NKEY_SEED_FILE: ${file} does not hold a user nkey seed (SU...)`]);
  return { nkeySeed: text };
}

/** Reads and validates the migrate command's configuration. */
export function loadMigrateConfig(env: Env = process.env): MigrateConfig {
  const e = parse(migrateSchema, env);
  return Object.freeze({ logLevel: e.LOG_LEVEL, database: resolveDatabase(e) });
}

/**
 * A database of a service's own, from the same variables as the orders database's with a prefix
 * (`INVENTORY_DATABASE_URL`, or `INVENTORY_DB_HOST`, `INVENTORY_POSTGRES_DB`, ...). Problems name the
 * prefixed variables.
 */
function loadPrefixedDatabase(
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

/** Runs every loader and throws one ConfigError with all their problems, or returns their results. */
function collect<T extends readonly unknown[]>(...loaders: { [K in keyof T]: () => T[K] }): T {
  const problems: string[] = [];
  const results = loaders.map((load) => {
    try {
      return load();
    } catch (err) {
      if (!(err instanceof ConfigError)) throw err;
      problems.push(...err.problems);
      return undefined;
    }
  });
  if (problems.length > 0) throw new ConfigError(problems);
  return results as unknown as T;
}

/**
 * How a durable JetStream consumer runs (packages/consumer): the durable's name, the stream and
 * subjects it reads, redelivery and dead-letter limits, inbox retention.
 */
const consumerShape = {
  CONSUMER_NAME: z
    .string()
    .regex(/^[A-Za-z0-9_-]+$/, 'must be letters, digits, "_" or "-" (it names the durable consumer)')
    .optional(),
  CONSUMER_ACK_WAIT_MS: positiveInt.min(500).default(10_000),
  CONSUMER_MAX_DELIVER: positiveInt.max(1000).default(5),
  CONSUMER_RETRY_DELAY_MS: positiveInt.default(1000),
  CONSUMER_RETRY_MAX_MS: positiveInt.default(60_000),
  INBOX_RETENTION: duration.default(30 * 86_400_000),
  INBOX_PRUNE_INTERVAL_MS: positiveInt.min(1000).default(600_000),
};

/** What packages/consumer needs of the environment. */
export interface ConsumerConfig {
  /** The durable consumer's name, also the inbox's and dead letters' `consumer` column. */
  readonly name: string;
  /** The stream read (`NATS_STREAM`) and the subjects (`<stream>.>`). */
  readonly stream: string;
  readonly filterSubject: string;
  /** A message not acknowledged within this is redelivered; a handler running longer extends it. */
  readonly ackWaitMs: number;
  /** Deliveries before a message whose handler keeps failing becomes a dead letter. */
  readonly maxDeliver: number;
  /** A failed handler's message comes back after this × 2^(deliveries-1), at most `retryMaxMs`. */
  readonly retryDelayMs: number;
  readonly retryMaxMs: number;
  /** Inbox rows older than this are deleted; 0 keeps them. */
  readonly inboxRetentionMs: number;
  readonly pruneIntervalMs: number;
}

const inventorySchema = z
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

const INVENTORY_DATABASE = { database: 'inventory', poolSize: 8 } as const;

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
    () => parse(z.object({ LOG_LEVEL: logLevel.default('info') }), env),
    () => loadPrefixedDatabase(env, 'INVENTORY_', INVENTORY_DATABASE),
  );
  return Object.freeze({ logLevel: e.LOG_LEVEL, database });
}

/** A connection URL with its password replaced, safe to log. */
export function redactUrl(url: string): string {
  try {
    const u = new URL(url);
    if (u.password) u.password = '***';
    return u.toString();
  } catch {
    return '<unparseable url>';
  }
}

// Trace export: the OpenTelemetry SDK reads the standard OTEL_* variables itself. They are checked
// here too, so that a typo stops the process at start like any other bad variable, instead of the
// SDK logging a warning nobody reads and silently exporting nothing (or with the wrong protocol).
const otlpEndpoint = z.url({ protocol: /^https?$/, error: 'must be an http:// or https:// URL' }).optional();
const otlpProtocol = z
  .enum(['grpc', 'http/protobuf', 'http/json'], { error: 'must be grpc, http/protobuf or http/json' })
  .optional();
const tracingSchema = z
  .object({
    OTEL_SDK_DISABLED: booleanFlag.default(false),
    OTEL_EXPORTER_OTLP_ENDPOINT: otlpEndpoint,
    OTEL_EXPORTER_OTLP_TRACES_ENDPOINT: otlpEndpoint,
    OTEL_EXPORTER_OTLP_PROTOCOL: otlpProtocol,
    OTEL_EXPORTER_OTLP_TRACES_PROTOCOL: otlpProtocol,
    OTEL_TRACES_EXPORTER: z
      .string()
      .regex(/^(otlp|console|none)(,(otlp|console|none))*$/, 'must be otlp, console or none')
      .optional(),
    OTEL_TRACES_SAMPLER: z
      .enum(
        [
          'always_on',
          'always_off',
          'traceidratio',
          'parentbased_always_on',
          'parentbased_always_off',
          'parentbased_traceidratio',
        ],
        { error: 'must be one of the spec samplers (e.g. parentbased_traceidratio)' },
      )
      .optional(),
    OTEL_TRACES_SAMPLER_ARG: z.coerce.number().min(0).max(1).optional(),
    OTEL_SERVICE_NAME: z.string().min(1).optional(),
    OTEL_RESOURCE_ATTRIBUTES: z.string().optional(),
    OTEL_METRICS_EXPORTER: z.string().optional(),
    OTEL_LOGS_EXPORTER: z.string().optional(),
  })
  .superRefine((e, ctx) => {
    if (e.OTEL_TRACES_SAMPLER_ARG !== undefined && !e.OTEL_TRACES_SAMPLER?.endsWith('traceidratio')) {
      ctx.addIssue({
        code: 'custom',
        path: ['OTEL_TRACES_SAMPLER_ARG'],
        message: 'only means something with OTEL_TRACES_SAMPLER=traceidratio or parentbased_traceidratio',
      });
    }
  });

/** Whether and how the API and the relay export traces, from the standard OpenTelemetry variables. */
export interface TracingConfig {
  /**
   * True when an OTLP endpoint is set (OTEL_EXPORTER_OTLP_ENDPOINT or ..._TRACES_ENDPOINT), unless
   * OTEL_SDK_DISABLED=true or OTEL_TRACES_EXPORTER=none. False: the SDK is never even loaded.
   */
  readonly enabled: boolean;
  /** True when OTEL_SERVICE_NAME or OTEL_RESOURCE_ATTRIBUTES names the service; else each process names itself. */
  readonly serviceNameFromEnv: boolean;
  /** OTEL_METRICS_EXPORTER / OTEL_LOGS_EXPORTER were set: the SDK exports those too (else Prometheus and pino do). */
  readonly metricsExport: boolean;
  readonly logsExport: boolean;
}

/** Reads and validates the OpenTelemetry variables the processes honour. */
export function loadTracingConfig(env: Env = process.env): TracingConfig {
  const e = parse(tracingSchema, env);
  const endpoint = e.OTEL_EXPORTER_OTLP_TRACES_ENDPOINT ?? e.OTEL_EXPORTER_OTLP_ENDPOINT;
  const exporters = e.OTEL_TRACES_EXPORTER?.split(',') ?? ['otlp'];
  return Object.freeze({
    enabled: endpoint !== undefined && !e.OTEL_SDK_DISABLED && !exporters.every((x) => x === 'none'),
    serviceNameFromEnv:
      e.OTEL_SERVICE_NAME !== undefined || /(^|,)\s*service\.name=/.test(e.OTEL_RESOURCE_ATTRIBUTES ?? ''),
    metricsExport: e.OTEL_METRICS_EXPORTER !== undefined,
    logsExport: e.OTEL_LOGS_EXPORTER !== undefined,
  });
}

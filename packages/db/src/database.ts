import type { DatabaseConfig } from '@orders/config';
import type { Logger } from '@orders/logger';
import { Kysely, PostgresDialect, type QueryExecutorProvider, sql } from 'kysely';
import pg from 'pg';
import type { Database } from './schema.js';

export interface CreateDbOptions {
  readonly logger?: Logger;
  /** Shown in pg_stat_activity, so an operator can tell the API's connections from the relay's. */
  readonly applicationName?: string;
  /** Session settings sent at connect (`-c name=value`), e.g. `{ 'outbox.notify': 'off' }`. */
  readonly sessionSettings?: Readonly<Record<string, string>>;
}

/** A Kysely instance over its own pg pool. `db.destroy()` closes the pool. */
export type Db = Kysely<Database>;

/**
 * Opens a pool with bounded waits everywhere: a connect timeout (a down database answers quickly
 * instead of hanging requests) and a server-side statement timeout (a stuck query cannot hold a
 * connection forever).
 */
export function createDb<DB = Database>(config: DatabaseConfig, options: CreateDbOptions = {}): Kysely<DB> {
  const pool = new pg.Pool({
    connectionString: config.url,
    max: config.poolSize,
    connectionTimeoutMillis: config.connectTimeoutMs,
    statement_timeout: config.statementTimeoutMs,
    // Past the statement timeout by a margin: covers a server that stopped answering altogether.
    query_timeout: config.statementTimeoutMs + 1000,
    idleTimeoutMillis: 30_000,
    application_name: options.applicationName ?? 'orders',
    keepAlive: true,
    ...(options.sessionSettings
      ? {
          options: Object.entries(options.sessionSettings)
            .map(([name, value]) => `-c ${name}=${value}`)
            .join(' '),
        }
      : {}),
  });
  // An idle client whose server went away emits 'error' on the pool; unhandled, it would crash the
  // process. The next checkout gets a fresh connection, so logging is all there is to do.
  // Log the error's message and code only: pg hangs the client (with its connection parameters,
  // password included) on some errors, and a logger would serialise all of it.
  pool.on('error', (err) => options.logger?.warn({ err: safeError(err) }, 'idle database connection failed'));
  // pg-pool listens for errors only on idle clients. A connection that dies while checked out (the
  // server restarted, an admin terminated it) emits 'error' as well as failing its query, and an
  // 'error' event with no listener ends the process. The query's own rejection carries the error.
  pool.on('connect', (client) => {
    client.on('error', (err) =>
      options.logger?.debug({ err: safeError(err) }, 'database connection failed while in use'),
    );
  });
  const db = new Kysely<DB>({ dialect: new PostgresDialect({ pool }) });
  pools.set(db, pool);
  return db;
}

const pools = new WeakMap<object, pg.Pool>();

/**
 * The pg pool under a `createDb` instance, for the few hot statements that are worth a named
 * (server-side prepared) statement, which Kysely does not offer. Not exported from the package.
 */
export function poolOf(db: Db): pg.Pool | undefined {
  return pools.get(db);
}

/** An error reduced to what is safe and useful in a log line. */
export function safeError(err: unknown): { type: string; message: string; code?: string } {
  if (!(err instanceof Error)) return { type: typeof err, message: String(err) };
  const code = (err as { code?: unknown }).code;
  return { type: err.name, message: err.message, ...(typeof code === 'string' ? { code } : {}) };
}

const UNAVAILABLE_CODES = new Set([
  'ECONNREFUSED',
  'ECONNRESET',
  'ETIMEDOUT',
  'EHOSTUNREACH',
  'ENOTFOUND',
  'EAI_AGAIN',
  'EPIPE',
  '57P01', // admin_shutdown
  '57P02', // crash_shutdown
  '57P03', // cannot_connect_now (starting up, shutting down, recovery)
  '57014', // query_canceled: our statement_timeout fired
  '53300', // too_many_connections
  '40001', // serialization_failure: retryable
  '40P01', // deadlock_detected: retryable
]);

/**
 * True when an error means "the database cannot serve this now" (down, unreachable, overloaded,
 * timed out) rather than "this request is wrong". Such errors become 503 with Retry-After.
 */
export function isDatabaseUnavailable(err: unknown): boolean {
  for (let e: unknown = err, depth = 0; e instanceof Error && depth < 5; e = e.cause, depth++) {
    const code = (e as { code?: unknown }).code;
    if (typeof code === 'string' && (UNAVAILABLE_CODES.has(code) || code.startsWith('08'))) return true;
    if (
      /timeout exceeded when trying to connect|Connection terminated|Query read timeout|not queryable|is not currently accepting connections/i.test(
        e.message,
      )
    ) {
      return true;
    }
    if (e instanceof AggregateError && e.errors.some(isDatabaseUnavailable)) return true;
  }
  return false;
}

/** Round trip to the database; throws when it does not answer. */
export async function pingDatabase(db: QueryExecutorProvider): Promise<void> {
  await sql`SELECT 1`.execute(db);
}

/**
 * Sends the relay's wake-up hint (`NOTIFY outbox`) after commits, outside the business transactions,
 * coalesced: at most one NOTIFY in flight per process, and one more after it when commits happened
 * meanwhile. A lost hint costs latency only (the relay's poll interval covers it), never an event.
 */
export function createOutboxNotifier(db: Db, onError: (err: unknown) => void = () => {}) {
  let sending: Promise<void> | undefined;
  let pending = false;
  async function send(): Promise<void> {
    try {
      do {
        pending = false;
        await sql`SELECT pg_notify('outbox', '')`.execute(db);
      } while (pending);
    } catch (err) {
      onError(err);
    } finally {
      sending = undefined;
    }
  }
  return {
    /** Call after a commit that wrote outbox rows. Never throws, never waits. */
    hint(): void {
      if (sending) pending = true;
      else sending = send();
    },
    /**
     * Resolves when no hint is in flight or pending. Await it before closing the pool: a hint cut off
     * by the close would leave the last commits waiting for the relay's poll.
     */
    async settled(): Promise<void> {
      while (sending) await sending;
    },
  };
}
export type OutboxNotifier = ReturnType<typeof createOutboxNotifier>;

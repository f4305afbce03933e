// The peer in the drain comparison: `pg-transactional-outbox`, the closest Node/TypeScript outbox library,
// draining the same backlog into the same JetStream stream as our relay does.
//
// In a fresh database of its own: the library's own schema (its `DatabaseSetup` table, polling function and
// polling indexes), a backlog bulk-loaded while nothing processes, then its polling listener
// (`initializePollingMessageListener`) with a handler that publishes each message with
// `Nats-Msg-Id = message id`, like our relay. Timed from the listener's start to the stream holding every
// row; a library that cannot get there stops at `timeoutMs` and is reported by what it did in that time.
//
// Settings, from the library's README and the source of v0.5.7 (polling listener):
// - messages are stored with `concurrency = 'parallel'` and no segment: the polling function returns the
//   oldest message of each segment and then fills the batch with the oldest 'parallel' messages; with
//   'sequential' messages (the default) it hands out one message per segment and poll;
// - `nextMessagesBatchSize` (default 5) is both how many messages one poll fetches and how many are in
//   flight at once (the listener refills its processing pool up to it); with a constant batch-size strategy
//   instead of the default one that starts with single-message batches (a poisonous-message guard);
// - a handler pool sized for the batch through the documented `messageProcessingDbClientStrategy` (the
//   default one is a `pg` Pool of 10): every message is its own transaction (lock it, handle, mark done);
// - max-attempts and poisonous-message protection off, as the README's outbox example and the outbox
//   defaults have it; a short polling interval (it only matters when the pool is not full);
// - automatic cleanup of processed messages off during the drain (interval 0): it deletes by age, at the
//   earliest seconds after processing, so within one drain it only adds deletes to the polling load.
import { createRequire } from 'node:module';
import { setTimeout as sleep } from 'node:timers/promises';
import { adminQuery, databaseUrl } from '@orders/testkit';
import { connect, type JsMsg, type NatsConnection, nanos, StorageType } from 'nats';
import pg from 'pg';
import {
  DatabaseSetup,
  type GeneralMessageHandler,
  initializePollingMessageListener,
  type MessageProcessingDbClientStrategy,
  type PollingListenerConfig,
  type TransactionalLogger,
} from 'pg-transactional-outbox';

export interface PeerDrainOptions {
  /** A maintenance database on the server (e.g. postgres://postgres@127.0.0.1:5432/postgres). */
  readonly adminUrl: string;
  /** A JetStream server. */
  readonly natsUrl: string;
  /** Created if missing: subjects `${stream}.>`, file storage, duplicate window 2 min. */
  readonly stream: string;
  readonly rows: number;
  /** JSON text of the i-th event payload. */
  readonly payloads: (i: number) => string;
  readonly onProgress?: (done: number) => void;
  /** Give up after this long (default 10 minutes) and report what was done by then. */
  readonly timeoutMs?: number;
  /** The library's `nextMessagesBatchSize` (default 50). */
  readonly batchSize?: number;
  /** How the messages are stored: 'parallel' without a segment (default), or 'sequential' with the aggregate id as segment. */
  readonly concurrency?: 'parallel' | 'sequential';
}

export interface PeerDrainResult {
  readonly library: string;
  readonly mode: string;
  readonly rows: number;
  /** From the start of the library's listener to the stream holding all rows (or to the timeout). */
  readonly seconds: number;
  readonly eventsPerSecond: number;
  /** Messages in the stream at the end. */
  readonly streamMessages: number;
  /** Messages beyond `rows` plus ids found more than once when reading the stream back. */
  readonly duplicates: number;
  /** Whether the stream held all rows before the timeout. */
  readonly completed: boolean;
  /** Handler calls for an id that had been handled before (re-sends the stream's dedup window absorbed). */
  readonly republished: number;
  /** Publish acks flagged duplicate by JetStream. */
  readonly ackDuplicates: number;
  /** Outbox rows marked processed by the library after it stopped. */
  readonly processedRows: number;
  /** Errors and warnings the library logged while draining (the first few are in `errorSamples`). */
  readonly libraryErrors: number;
  readonly errorSamples: readonly string[];
}

const DEFAULT_TIMEOUT_MS = 10 * 60_000;
const DEFAULT_BATCH_SIZE = 50;
/** The server is shared: never more handler connections than this, whatever the batch size. */
const MAX_HANDLER_CONNECTIONS = 50;
const POLLING_INTERVAL_MS = 10;
const LOCK_MS = 5000;
const LOAD_CHUNK = 10_000;
const TABLE = 'outbox';
const NEXT_MESSAGES_FUNCTION = 'next_outbox_messages';

const libraryVersion = (): string => {
  const require = createRequire(import.meta.url);
  const pkg = require('pg-transactional-outbox/package.json') as { version?: unknown };
  return `pg-transactional-outbox@${typeof pkg.version === 'string' ? pkg.version : 'unknown'}`;
};

async function ensureStream(nc: NatsConnection, stream: string): Promise<void> {
  const jsm = await nc.jetstreamManager();
  try {
    await jsm.streams.info(stream);
  } catch {
    await jsm.streams.add({
      name: stream,
      subjects: [`${stream}.>`],
      storage: StorageType.File,
      duplicate_window: nanos(120_000),
    });
  }
}

async function streamMessages(nc: NatsConnection, stream: string): Promise<number> {
  const jsm = await nc.jetstreamManager();
  return (await jsm.streams.info(stream)).state.messages;
}

/** Reads the stream back: how many message ids occur more than once. */
async function repeatedIds(nc: NatsConnection, stream: string, total: number): Promise<number> {
  if (total === 0) return 0;
  const seen = new Set<string>();
  let repeated = 0;
  let read = 0;
  const consumer = await nc.jetstream().consumers.get(stream);
  const messages = await consumer.consume({ max_messages: 2000 });
  for await (const m of messages as AsyncIterable<JsMsg>) {
    const id = m.headers?.get('Nats-Msg-Id') ?? '';
    if (seen.has(id)) repeated++;
    else seen.add(id);
    if (++read >= total) break;
  }
  await messages.close();
  return repeated;
}

/** A logger for the library that counts its warnings and errors and keeps a few of them. */
function countingLogger(): { logger: TransactionalLogger; errors: () => number; samples: string[] } {
  let errors = 0;
  const samples: string[] = [];
  const describe = (args: readonly unknown[]) =>
    args
      .map((a) => (a instanceof Error ? a.message : typeof a === 'string' ? a : ''))
      .filter((s) => s !== '')
      .join(': ');
  const count = (...args: unknown[]) => {
    errors++;
    if (samples.length < 5) samples.push(describe(args));
  };
  const ignore = () => {};
  const logger: TransactionalLogger = {
    level: 'warn',
    fatal: count,
    error: count,
    warn: count,
    info: ignore,
    debug: ignore,
    trace: ignore,
    silent: ignore,
  };
  return { logger, errors: () => errors, samples };
}

/** The library's own schema for the polling listener, as its `DatabaseSetup` helper writes it. */
async function createSchema(client: pg.Client, database: string): Promise<void> {
  const setup = {
    outboxOrInbox: 'outbox' as const,
    database,
    schema: 'public',
    table: TABLE,
    listenerRole: 'postgres',
    nextMessagesName: NEXT_MESSAGES_FUNCTION,
  };
  await client.query(DatabaseSetup.dropAndCreateTable(setup));
  await client.query(DatabaseSetup.createPollingFunction(setup));
  await client.query(DatabaseSetup.setupPollingIndexes(setup));
}

/** The backlog: `rows` messages inserted in bulk while nothing processes, then vacuumed and analyzed. */
async function loadBacklog(
  client: pg.Client,
  rows: number,
  payloads: (i: number) => string,
  concurrency: 'parallel' | 'sequential',
): Promise<void> {
  for (let start = 0; start < rows; start += LOAD_CHUNK) {
    const chunk = Array.from({ length: Math.min(LOAD_CHUNK, rows - start) }, (_, k) => payloads(start + k));
    // created_at defaults to clock_timestamp(): one distinct, increasing value per row, in load order.
    await client.query(
      `INSERT INTO ${TABLE} (id, aggregate_type, aggregate_id, message_type, segment, concurrency, payload)
       SELECT gen_random_uuid(), 'order', a.aggregate_id, 'order_created',
              CASE WHEN $2 = 'sequential' THEN a.aggregate_id END, $2, p.payload::jsonb
       FROM unnest($1::text[]) WITH ORDINALITY AS p (payload, n)
       CROSS JOIN LATERAL (SELECT gen_random_uuid()::text AS aggregate_id) AS a
       ORDER BY p.n`,
      [chunk, concurrency],
    );
  }
  await client.query(`VACUUM ANALYZE ${TABLE}`);
}

/** A handler pool of the given size, handed to the library through its documented client strategy. */
function handlerPool(url: string, size: number): MessageProcessingDbClientStrategy {
  const pool = new pg.Pool({ connectionString: url, max: size });
  pool.on('error', () => {}); // idle-client errors: the library logs what fails in its own queries
  pool.on('connect', (client) => client.on('error', () => {}));
  return {
    getClient: async () => pool.connect(),
    shutdown: async () => {
      await pool.end();
    },
  };
}

export async function runPeerDrain(options: PeerDrainOptions): Promise<PeerDrainResult> {
  const { adminUrl, natsUrl, stream, rows, payloads, onProgress } = options;
  const timeoutMs = options.timeoutMs ?? DEFAULT_TIMEOUT_MS;
  const batchSize = options.batchSize ?? DEFAULT_BATCH_SIZE;
  const concurrency = options.concurrency ?? 'parallel';
  const handlerConnections = Math.min(batchSize, MAX_HANDLER_CONNECTIONS);
  const library = libraryVersion();
  const mode =
    `polling, batch ${batchSize} (constant), ${handlerConnections} handler connections, ` +
    `poll interval ${POLLING_INTERVAL_MS} ms, lock ${LOCK_MS} ms, '${concurrency}' messages` +
    `${concurrency === 'sequential' ? ' segmented by aggregate' : ''}, ` +
    'max-attempts/poisonous protection off, cleanup off';

  const database = `peer_pgto_${process.pid}_${Math.random().toString(16).slice(2, 10)}`;
  const url = databaseUrl(adminUrl, database);
  await adminQuery(adminUrl, [`CREATE DATABASE "${database}"`]);
  let nc: NatsConnection | undefined;
  try {
    const setupClient = new pg.Client({ connectionString: url });
    await setupClient.connect();
    try {
      await createSchema(setupClient, database);
      await loadBacklog(setupClient, rows, payloads, concurrency);
    } finally {
      await setupClient.end();
    }

    nc = await connect({ servers: natsUrl });
    await ensureStream(nc, stream);
    const before = await streamMessages(nc, stream);
    const js = nc.jetstream();
    const subject = `${stream}.order_created`;
    const encoder = new TextEncoder();
    const handled = new Set<string>();
    let republished = 0;
    let ackDuplicates = 0;
    const publisher: GeneralMessageHandler = {
      handle: async (message) => {
        if (handled.has(message.id)) republished++;
        else handled.add(message.id);
        // The payload column is jsonb: the library hands it over parsed, so it goes out re-serialized.
        const ack = await js.publish(subject, encoder.encode(JSON.stringify(message.payload)), {
          msgID: message.id,
        });
        if (ack.duplicate) ackDuplicates++;
      },
    };

    const { logger, errors, samples } = countingLogger();
    const config: PollingListenerConfig = {
      outboxOrInbox: 'outbox',
      dbListenerConfig: { connectionString: url },
      settings: {
        dbSchema: 'public',
        dbTable: TABLE,
        enableMaxAttemptsProtection: false,
        enablePoisonousMessageProtection: false,
        messageCleanupIntervalInMs: Number(process.env['PEER_CLEANUP_MS'] ?? 0),
        messageCleanupProcessedInSec: 1,
        nextMessagesFunctionName: NEXT_MESSAGES_FUNCTION,
        nextMessagesBatchSize: batchSize,
        nextMessagesPollingIntervalInMs: POLLING_INTERVAL_MS,
        nextMessagesLockInMs: LOCK_MS,
      },
    };

    const started = performance.now();
    const [shutdown] = initializePollingMessageListener(config, publisher, logger, {
      batchSizeStrategy: () => Promise.resolve(batchSize),
      messageProcessingDbClientStrategy: handlerPool(url, handlerConnections),
    });
    let done = 0;
    let completed = false;
    let lastProgress = started;
    let seconds: number;
    let errorsWhileDraining = 0;
    try {
      for (;;) {
        done = (await streamMessages(nc, stream)) - before;
        const now = performance.now();
        if (done >= rows) {
          completed = true;
          seconds = (now - started) / 1000;
          break;
        }
        if (now - started >= timeoutMs) {
          seconds = (now - started) / 1000;
          break;
        }
        if (onProgress && now - lastProgress >= 2000) {
          lastProgress = now;
          onProgress(done);
        }
        await sleep(20);
      }
    } finally {
      errorsWhileDraining = errors();
      await shutdown();
    }
    onProgress?.(done);

    const total = await streamMessages(nc, stream);
    const streamed = total - before;
    const repeated = before === 0 ? await repeatedIds(nc, stream, total) : 0;
    const check = new pg.Client({ connectionString: url });
    await check.connect();
    let processedRows = 0;
    try {
      const result = await check.query<{ n: string }>(
        `SELECT count(*) AS n FROM ${TABLE} WHERE processed_at IS NOT NULL`,
      );
      processedRows = Number(result.rows[0]?.n ?? 0);
    } finally {
      await check.end();
    }

    const finishedCount = completed ? rows : done;
    return {
      library,
      mode,
      rows,
      seconds,
      eventsPerSecond: finishedCount / seconds,
      streamMessages: streamed,
      duplicates: Math.max(0, streamed - rows) + repeated,
      completed,
      republished,
      ackDuplicates,
      processedRows,
      libraryErrors: errorsWhileDraining,
      errorSamples: samples,
    };
  } finally {
    await nc?.drain().catch(() => {});
    await adminQuery(adminUrl, [`DROP DATABASE IF EXISTS "${database}" WITH (FORCE)`]);
  }
}

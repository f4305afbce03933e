// Child process: the consumer package draining `n` events from a durable of its own, with the inbox
// (dedupe on: the event id recorded in the handler's transaction) or without it (the same consumer and
// handler, only the inbox write skipped). The handler is one upsert, a small real one (a counter per
// key). Prints one JSON line.
import { createConsumer } from '@orders/consumer';
import { createDb } from '@orders/db';
import { createLogger } from '@orders/logger';
import { sql } from 'kysely';
import { connect } from 'nats';

const [dbUrl = '', natsUrl = '', stream = '', durable = '', nArg = '0', dedupeArg = 'true'] =
  process.argv.slice(2);
const n = Number(nArg);
const db = createDb<never>({ url: dbUrl, poolSize: 4, connectTimeoutMs: 5000, statementTimeoutMs: 60_000 });
const nc = await connect({ servers: natsUrl, noAsyncTraces: true });
let handled = 0;
let first = 0;
const { promise: done, resolve } = Promise.withResolvers<void>();
const consumer = createConsumer({
  db,
  nats: nc,
  logger: createLogger({ name: 'bench-consumer', level: 'warn' }),
  settings: {
    stream,
    name: durable,
    filterSubject: `${stream}.>`,
    ackWaitMs: 30_000,
    maxDeliver: 5,
    retryDelayMs: 1000,
    retryMaxMs: 60_000,
    dedupe: dedupeArg === 'true',
  },
  handler: async (event, { trx }) => {
    if (handled === 0) first = performance.now();
    const { key } = event.payload as { key: string };
    await sql`INSERT INTO bench_counts (key, n) VALUES (${key}, 1)
              ON CONFLICT (key) DO UPDATE SET n = bench_counts.n + 1`.execute(trx);
    // Counted once the transaction's last statement ran; the commit and ack follow.
    if (++handled === n) queueMicrotask(resolve);
  },
});
const started = performance.now();
consumer.start();
await done;
await consumer.stop();
const seconds = (performance.now() - first) / 1000;
await nc.close();
await db.destroy();
process.stdout.write(
  `${JSON.stringify({ n, seconds, eventsPerSecond: n / seconds, startupMs: first - started, dedupe: dedupeArg === 'true' })}\n`,
);

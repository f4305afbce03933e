// Child process: the database ceiling for creating orders. The same transaction as the API (order,
// items in one multi-row insert, outbox row) issued straight from Node with the API's pool size, no
// HTTP, `concurrency` loops for `durationMs`. Prints one JSON line.
import {
  createDb,
  createOutboxNotifier,
  enqueueOutboxEvent,
  insertOrder,
  insertOrderWithEvent,
} from '@orders/db';
import { orderWithEvent, seedOrder } from './payload.js';

const [
  url = '',
  concurrencyArg = '16',
  durationArg = '5000',
  poolArg = '16',
  stream = 'orders',
  shape = 'single',
] = process.argv.slice(2);
const concurrency = Number(concurrencyArg);
const durationMs = Number(durationArg);
// Configured as the API configures itself by default: no NOTIFY inside the transaction, one
// coalesced hint after commits.
const db = createDb(
  { url, poolSize: Number(poolArg), connectTimeoutMs: 5000, statementTimeoutMs: 30_000 },
  { sessionSettings: { 'outbox.notify': 'off' } },
);
const notifier = createOutboxNotifier(db);

const latencies: number[] = [];
let errors = 0;
const deadline = performance.now() + durationMs;
const started = performance.now();
await Promise.all(
  Array.from({ length: concurrency }, async () => {
    while (performance.now() < deadline) {
      const t0 = performance.now();
      try {
        const { order, event } = orderWithEvent(stream, seedOrder());
        if (shape === 'single') {
          // What the API does: one statement.
          await insertOrderWithEvent(db, order, event);
          notifier.hint();
        } else {
          // The textbook shape, for comparison: BEGIN, three INSERTs, COMMIT.
          await db.transaction().execute(async (trx) => {
            await insertOrder(trx, order);
            await enqueueOutboxEvent(trx, event);
          });
        }
        latencies.push(performance.now() - t0);
      } catch {
        errors++;
      }
    }
  }),
);
const seconds = (performance.now() - started) / 1000;
await notifier.settled();
await db.destroy();
latencies.sort((a, b) => a - b);
const pick = (p: number) =>
  latencies[Math.min(latencies.length - 1, Math.ceil((p / 100) * latencies.length) - 1)] ?? 0;
process.stdout.write(
  `${JSON.stringify({ orders: latencies.length, errors, seconds, ordersPerSecond: latencies.length / seconds, p50: pick(50), p99: pick(99), max: latencies.at(-1) ?? 0 })}\n`,
);

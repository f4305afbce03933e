// Child process: an open-loop load of new orders at a fixed rate, written straight to PostgreSQL as
// the API writes them (the same one statement, the same after-commit wake-up hint, a pool of 16), with
// no HTTP in front. Beside the HTTP rows it separates the relay's commit-to-stream latency from the
// API's own queueing on a machine where the API is near its ceiling. Prints one JSON line.
import { createDb, createOutboxNotifier, insertOrderWithEvent } from '@orders/db';
import { runOpenLoop } from './open-loop.js';
import { orderWithEvent, seedOrder } from './payload.js';

const [url = '', stream = 'orders', rateArg = '200', durationArg = '5'] = process.argv.slice(2);
const db = createDb(
  { url, poolSize: 16, connectTimeoutMs: 5000, statementTimeoutMs: 30_000 },
  { sessionSettings: { 'outbox.notify': 'off' } },
);
const notifier = createOutboxNotifier(db);
const result = await runOpenLoop(Number(rateArg), Number(durationArg) * 1000, async () => {
  const { order, event } = orderWithEvent(stream, seedOrder());
  await insertOrderWithEvent(db, order, event);
  notifier.hint();
  return true as const;
});
await notifier.settled();
await db.destroy();
process.stdout.write(`${JSON.stringify(result)}\n`);

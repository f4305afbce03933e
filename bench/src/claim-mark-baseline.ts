// Child process: the database half of the relay's work alone. Claims and marks a loaded backlog the
// way the relay does (same statements, batch 500, the mark of one batch overlapping the next claim),
// publishing nothing. Prints one JSON line.
import { claimOutboxBatch, createDb, markOutboxPublished } from '@orders/db';

const [url = '', batchArg = '500'] = process.argv.slice(2);
const batch = Number(batchArg);
const db = createDb({ url, poolSize: 4, connectTimeoutMs: 5000, statementTimeoutMs: 120_000 });
const started = performance.now();
let rows = 0;
let marking: Promise<number> | undefined;
for (;;) {
  const claimed = await claimOutboxBatch(db, {
    limit: batch,
    leaseMs: 30_000,
    relayId: 'bench',
    perAggregateOrder: true,
  });
  await marking;
  if (claimed.length === 0) break;
  rows += claimed.length;
  marking = markOutboxPublished(
    db,
    claimed.map((r) => r.id),
  );
}
const seconds = (performance.now() - started) / 1000;
await db.destroy();
process.stdout.write(`${JSON.stringify({ rows, seconds, rowsPerSecond: rows / seconds })}\n`);

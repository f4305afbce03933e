// Child process: the database half of the relay's work alone. Reads a loaded backlog through the log
// read the relay uses (same statement, every partition, a batch of 500 spread over them), from each
// partition's cursor, publishing and writing nothing. Prints one JSON line.
import { createDb, type LogPosition, readOutboxLog } from '@orders/db';
import { sql } from 'kysely';
import { machineCpuSeconds } from './machine-cpu.js';

const [url = '', batchArg = '500'] = process.argv.slice(2);
const batch = Number(batchArg);
const db = createDb({ url, poolSize: 4, connectTimeoutMs: 5000, statementTimeoutMs: 120_000 });
const { rows: cursors } = await sql<{ partition: number; snapshot: string }>`
  SELECT partition, acked_snapshot::text AS snapshot FROM outbox_cursor ORDER BY partition`.execute(db);
const positions = new Map<number, LogPosition>(
  cursors.map((c) => [c.partition, { snapshot: c.snapshot, target: null, afterXid: null, afterSeq: null }]),
);
const limit = Math.ceil(batch / positions.size);
const cpu0 = await machineCpuSeconds();
const started = performance.now();
let rows = 0;
for (;;) {
  const reads = await readOutboxLog(
    db,
    [...positions].map(([partition, from]) => ({ partition, from })),
    limit,
  );
  let read = 0;
  for (const r of reads) {
    positions.set(r.partition, r.next);
    read += r.events.length;
  }
  rows += read;
  if (read === 0) break;
}
const seconds = (performance.now() - started) / 1000;
const machineCpu = (await machineCpuSeconds()) - cpu0;
await db.destroy();
process.stdout.write(`${JSON.stringify({ rows, seconds, rowsPerSecond: rows / seconds, machineCpu })}\n`);

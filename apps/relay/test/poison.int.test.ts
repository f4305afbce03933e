import { setTimeout as sleep } from 'node:timers/promises';
import { sql } from 'kysely';
import { describe, expect, it } from 'vitest';
import { exactlyOnce, insertBacklog, readStream, startRelay, unreadIds, waitFor } from './helpers.js';
import { relayTestServers } from './servers.js';

const { tdb, nats, nc } = await relayTestServers();

async function poisonRow(subject: string, payload: string): Promise<string> {
  const { rows } = await sql<{ id: string }>`
    INSERT INTO outbox (id, aggregate_type, aggregate_id, event_type, subject, payload)
    VALUES (gen_random_uuid(), 'order', 'poison', 'order_created', ${subject}, ${payload}::jsonb) RETURNING id`.execute(
    tdb.db,
  );
  return rows[0]?.id ?? '';
}

describe('poison rows', () => {
  it('rows that cannot be published end dead with their error, and never block the rows around them', async () => {
    const before = await insertBacklog(tdb.db, 100);
    const tooLarge = await poisonRow('orders.order_created', JSON.stringify({ blob: 'x'.repeat(1_100_000) }));
    const noStream = await poisonRow('elsewhere.order_created', '{"lost": true}');
    const badSubject = await poisonRow('orders.order created', '{"space": true}');
    // A stream that refuses messages over 64 bytes: JetStream answers the publish with an error.
    const jsm = await nc.jetstreamManager();
    await jsm.streams.add({ name: 'small', subjects: ['small.>'], max_msg_size: 64 });
    const refused = await poisonRow('small.order_created', JSON.stringify({ blob: 'y'.repeat(200) }));
    const after = await insertBacklog(tdb.db, 100);
    const relay = await startRelay(tdb.url, nats, {
      RELAY_MAX_ATTEMPTS: '3',
      RELAY_RETRY_DELAY_MS: '50',
      RELAY_BATCH_SIZE: '50',
    });
    try {
      const good = [...before, ...after];
      const poison = [tooLarge, noStream, badSubject, refused];
      // A failing row holds its own partition (retried with backoff) until it dies, then the cursor
      // moves on: every good row is published, including those queued behind a poison row.
      await waitFor('the good rows', async () => (await unreadIds(tdb.db, good)).length === 0);
      await waitFor(
        'the poison rows to die',
        async () => {
          const { rows } = await sql<{ n: number }>`
            SELECT count(*)::int AS n FROM outbox_dead WHERE id = ANY(${poison}::uuid[])`.execute(tdb.db);
          return rows[0]?.n === 4;
        },
        20_000,
      );
      // Dead letters left the log (same id, error and attempts kept) and their failure counts with it.
      const { rows } = await sql<{ id: string; attempts: number; last_error: string }>`
        SELECT id, attempts, last_error FROM outbox_dead WHERE id = ANY(${poison}::uuid[])`.execute(tdb.db);
      const byId = new Map(rows.map((r) => [r.id, r]));
      expect(byId.get(tooLarge)).toMatchObject({ attempts: 3 });
      expect(byId.get(tooLarge)?.last_error).toMatch(/exceeds the server's max_payload/);
      expect(byId.get(noStream)?.last_error).toMatch(/no stream captures subject elsewhere\.order_created/);
      expect(byId.get(badSubject)?.last_error).toMatch(/invalid subject/);
      expect(byId.get(refused)).toMatchObject({ attempts: 3 });
      expect(byId.get(refused)?.last_error).toMatch(
        /jetstream refused the message: message size exceeds maximum/,
      );
      const { rows: left } = await sql<{ in_log: number; failures: number }>`
        SELECT (SELECT count(*)::int FROM outbox WHERE id = ANY(${poison}::uuid[])) AS in_log,
               (SELECT count(*)::int FROM outbox_failures WHERE id = ANY(${poison}::uuid[])) AS failures`.execute(
        tdb.db,
      );
      expect(left[0]).toEqual({ in_log: 0, failures: 0 });
      // The stream holds the good rows once each and nothing of the poison ones.
      expect(exactlyOnce(await readStream(nc, 'orders'), good)).toEqual({
        missing: [],
        duplicated: [],
        unexpected: [],
      });
      expect(await relay.metric('outbox_dead_total')).toBe(4);
      expect(await relay.metric('outbox_dead_rows')).toBe(4);
      expect(await relay.metric('outbox_pending')).toBe(0);
      const deadLogs = relay.lines.filter((l) => l.includes('outbox row is dead'));
      expect(deadLogs).toHaveLength(4);
      expect(JSON.parse(deadLogs[0] ?? '{}')).toMatchObject({ level: 'error', attempts: 3 });
      // Dead rows left the log: nothing tries them again (no new attempt logged or counted).
      const attemptsLogged = () => relay.lines.filter((l) => poison.some((id) => l.includes(id))).length;
      const logged = attemptsLogged();
      expect(logged).toBe(4 * 3); // two retries and the death of each
      await sleep(500);
      expect(attemptsLogged()).toBe(logged);
      expect(await relay.metric('outbox_dead_total')).toBe(4);
      const { rows: failuresLater } = await sql<{ n: number }>`
        SELECT count(*)::int AS n FROM outbox_failures`.execute(tdb.db);
      expect(failuresLater[0]?.n).toBe(0);
    } finally {
      relay.kill('SIGTERM');
      await relay.exited;
    }
  });
});

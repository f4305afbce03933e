import { adminQuery, createTestDatabase, startNatsServer } from '@orders/testkit';
import { afterAll, describe, expect, it } from 'vitest';
import { insertBacklog, makeDead, startRelay, waitFor } from './helpers.js';

// The relay's backlog gauges while its database is gone: the built relay against a real PostgreSQL
// that stops accepting its connections, scraped over HTTP as Prometheus would.

const tdb = await createTestDatabase();
const nats = await startNatsServer();
afterAll(async () => {
  await adminQuery(tdb.adminUrl, [`ALTER DATABASE "${tdb.name}" ALLOW_CONNECTIONS true`]);
  await nats.dispose();
  await tdb.drop();
});

describe('/metrics while the database is down', () => {
  it('drops the backlog series (no stale numbers), reports outbox_backlog_up 0, and brings them back', async () => {
    // Dead rows stay as they are whatever the relay does: a number that is not 0 to go stale.
    const ids = await insertBacklog(tdb.db, 3);
    await makeDead(tdb.db, ids, { attempts: 10, error: 'test' });
    const relay = await startRelay(tdb.url, nats, { RELAY_BACKOFF_MAX_MS: '500' });
    const scrape = async () => (await fetch(`http://127.0.0.1:${relay.port}/metrics`)).text();
    const sample = (text: string, name: string) =>
      text
        .split('\n')
        .find((l) => l.startsWith(`${name} `))
        ?.split(' ')[1];
    try {
      const before = await scrape();
      expect(sample(before, 'outbox_dead_rows')).toBe('3');
      expect(sample(before, 'outbox_pending')).toBe('0');

      await adminQuery(tdb.adminUrl, [
        `ALTER DATABASE "${tdb.name}" ALLOW_CONNECTIONS false`,
        `SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = '${tdb.name}' AND application_name LIKE '%relay%'`,
      ]);
      await waitFor(
        'the relay to see the database gone',
        async () => (await fetch(`http://127.0.0.1:${relay.port}/ready`)).status === 503,
        15_000,
        100,
      );
      const during = await scrape();
      for (const name of ['outbox_pending', 'outbox_oldest_pending_age_seconds', 'outbox_dead_rows']) {
        expect(sample(during, name), name).toBeUndefined();
      }
      expect(sample(during, 'outbox_backlog_up')).toBe('0');
      // The rest of the scrape is still there.
      expect(sample(during, 'outbox_published_total')).toBeDefined();

      await adminQuery(tdb.adminUrl, [`ALTER DATABASE "${tdb.name}" ALLOW_CONNECTIONS true`]);
      const after = await waitFor(
        'the backlog read again',
        async () => {
          const text = await scrape();
          return sample(text, 'outbox_backlog_up') === '1' && text;
        },
        15_000,
        100,
      );
      expect(sample(after, 'outbox_dead_rows')).toBe('3');
      expect(sample(before, 'outbox_backlog_up')).toBe('1');
      expect(sample(after, 'outbox_pending')).toBe('0');
    } finally {
      await adminQuery(tdb.adminUrl, [`ALTER DATABASE "${tdb.name}" ALLOW_CONNECTIONS true`]);
      relay.kill('SIGTERM');
      await relay.exited;
    }
  });
});

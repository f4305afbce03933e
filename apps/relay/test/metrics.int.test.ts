import { afterAll, describe, expect, it } from 'vitest';
import {
  closeDatabase,
  insertBacklog,
  makeDead,
  readyStatus,
  reopenDatabase,
  waitFor,
  withRelay,
} from './helpers.js';
import { relayTestServers } from './servers.js';

// The relay's backlog gauges while its database is gone: the built relay against a real PostgreSQL
// that stops accepting its connections, scraped over HTTP as Prometheus would.

const { tdb, nats } = await relayTestServers();
// Before the servers close (afterAll hooks run last registered first).
afterAll(() => reopenDatabase(tdb));

describe('/metrics while the database is down', () => {
  it('drops the backlog series (no stale numbers), reports outbox_backlog_up 0, and brings them back', async () => {
    // Dead rows stay as they are whatever the relay does: a number that is not 0 to go stale.
    const ids = await insertBacklog(tdb.db, 3);
    await makeDead(tdb.db, ids, { attempts: 10, error: 'test' });
    await withRelay(tdb.url, nats, { RELAY_BACKOFF_MAX_MS: '500' }, async (relay) => {
      const scrape = async () => (await fetch(`${relay.base}/metrics`)).text();
      const sample = (text: string, name: string) =>
        text
          .split('\n')
          .find((l) => l.startsWith(`${name} `))
          ?.split(' ')[1];
      try {
        const before = await scrape();
        expect(sample(before, 'outbox_dead_rows')).toBe('3');
        expect(sample(before, 'outbox_pending')).toBe('0');

        await closeDatabase(tdb);
        await waitFor(
          'the relay to see the database gone',
          async () => (await readyStatus(relay)) === 503,
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

        await reopenDatabase(tdb);
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
        await reopenDatabase(tdb);
      }
    });
  });
});

import { setTimeout as sleep } from 'node:timers/promises';
import { describe, expect, it } from 'vitest';
import { exactlyOnce, insertBacklog, readStream, startRelay, streamCount, waitFor } from './helpers.js';
import { relayTestServers } from './servers.js';

const { tdb, nats, nc } = await relayTestServers();

describe('racing relays', () => {
  it('three relay processes drain 10,000 rows together: one message per row, each relay published some', async () => {
    const relays = await Promise.all(
      [1, 2, 3].map(() => startRelay(tdb.url, nats, { RELAY_BATCH_SIZE: '250' })),
    );
    try {
      await Promise.all(
        relays.map((r) => waitFor('ready', async () => (await fetch(`http://127.0.0.1:${r.port}/ready`)).ok)),
      );
      const started = performance.now();
      // One transaction, one notification: all three wake at once and compete for the same rows.
      const ids = await insertBacklog(tdb.db, 10_000);
      await waitFor('10,000 messages', async () => (await streamCount(nc, 'orders')) >= 10_000, 60_000, 10);
      const seconds = (performance.now() - started) / 1000;
      console.info(
        `3 relays drained 10,000 rows in ${seconds.toFixed(2)} s: ${Math.round(10_000 / seconds)} events/s`,
      );
      await sleep(300);
      const messages = await readStream(nc, 'orders');
      expect(messages).toHaveLength(10_000);
      expect(exactlyOnce(messages, ids)).toEqual({ missing: [], duplicated: [], unexpected: [] });
      const perRelay = await Promise.all(relays.map((r) => r.metric('outbox_published_total')));
      for (const n of perRelay) expect(n).toBeGreaterThan(0);
      expect(perRelay.reduce((a, b) => a + b, 0)).toBe(10_000);
      expect(await Promise.all(relays.map((r) => r.metric('outbox_duplicates_total')))).toEqual([0, 0, 0]);
    } finally {
      for (const r of relays) r.kill('SIGTERM');
      await Promise.all(relays.map((r) => r.exited));
    }
  }, 90_000);
});

import { getEventListeners } from 'node:events';
import { silentLogger } from '@orders/logger';
import { adminQuery, createTestDatabase } from '@orders/testkit';
import { afterAll, describe, expect, it, vi } from 'vitest';
import { OutboxListener } from '../src/listener.js';
import { waitFor } from './helpers.js';

// The relay's own session (presence lock, LISTEN) against a real PostgreSQL whose backend is killed
// again and again, as a failover or an idle-session reaper would.

const tdb = await createTestDatabase();
afterAll(async () => {
  await tdb.drop();
});

describe('OutboxListener', () => {
  it('reconnects after every lost connection without leaving a listener behind on its stop signal', async () => {
    // Node 24 exempts AbortSignal from its MaxListeners warning, so count the listeners themselves:
    // every AbortSignal that gets an 'abort' listener from here on is kept, and read back below.
    const signals = new Set<AbortSignal>();
    const add = EventTarget.prototype.addEventListener;
    const spy = vi.spyOn(EventTarget.prototype, 'addEventListener').mockImplementation(function (
      this: EventTarget,
      ...args: Parameters<EventTarget['addEventListener']>
    ) {
      if (this instanceof AbortSignal && args[0] === 'abort') signals.add(this);
      return add.apply(this, args);
    });
    let sessions = 0;
    const listener = new OutboxListener({
      url: tdb.url,
      connectTimeoutMs: 2000,
      backoffMaxMs: 100,
      logger: silentLogger(),
      relayId: 'listener-test',
      onNotify: () => {},
      onListening: () => sessions++,
    });
    listener.start();
    try {
      await waitFor('the first session', async () => sessions === 1);
      for (let i = 1; i <= 12; i++) {
        await adminQuery(tdb.adminUrl, [
          `SELECT pg_terminate_backend(pid) FROM pg_stat_activity
           WHERE datname = '${tdb.name}' AND application_name = 'orders-relay-listen'`,
        ]);
        await waitFor(`session ${i + 1}`, async () => sessions === i + 1, 10_000);
      }
      // While connected, one listener waits for stop: the connection's own, none left from earlier ones.
      const most = Math.max(0, ...[...signals].map((s) => getEventListeners(s, 'abort').length));
      expect(most).toBe(1);
    } finally {
      spy.mockRestore();
      await listener.stop();
    }
  });
});

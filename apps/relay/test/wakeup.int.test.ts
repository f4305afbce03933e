import { setTimeout as sleep } from 'node:timers/promises';
import { describe, expect, it } from 'vitest';
import { startApi, startRelay, streamCount, waitFor } from './helpers.js';
import { relayTestServers } from './servers.js';

const { tdb, nats, nc } = await relayTestServers();

/** Creates one order through the API and returns how long until its event is in the stream. */
async function orderToStreamMs(api: Awaited<ReturnType<typeof startApi>>): Promise<number> {
  const before = await streamCount(nc, 'orders');
  const started = performance.now();
  expect((await api.createOrder()).status).toBe(201);
  await waitFor('the event', async () => (await streamCount(nc, 'orders')) > before, 20_000, 2);
  return performance.now() - started;
}

describe('wake-up', () => {
  it('with LISTEN/NOTIFY an order reaches the stream well before the poll interval', async () => {
    const relay = await startRelay(tdb.url, nats, { RELAY_POLL_INTERVAL_MS: '4000' });
    const api = await startApi(tdb.url);
    try {
      await relay.waitForLine(/listening for outbox notifications/);
      await waitFor('ready', async () => (await fetch(`http://127.0.0.1:${relay.port}/ready`)).ok);
      await sleep(200); // let the relay go idle
      const times: number[] = [];
      for (let i = 0; i < 5; i++) times.push(await orderToStreamMs(api));
      // Loose on purpose (the benchmark measures it precisely): every one under half the interval.
      expect(Math.max(...times)).toBeLessThan(2000);
    } finally {
      await api.stop();
      relay.kill('SIGTERM');
      await relay.exited;
    }
  });

  it('without notifications the safety poll still delivers within the poll interval', async () => {
    const relay = await startRelay(tdb.url, nats, { RELAY_POLL_INTERVAL_MS: '1000', RELAY_LISTEN: 'false' });
    const api = await startApi(tdb.url);
    try {
      await waitFor('ready', async () => (await fetch(`http://127.0.0.1:${relay.port}/ready`)).ok);
      expect(relay.lines.some((l) => l.includes('listening for outbox notifications'))).toBe(false);
      const times: number[] = [];
      for (let i = 0; i < 3; i++) times.push(await orderToStreamMs(api));
      expect(Math.max(...times)).toBeLessThan(1000 + 500);
    } finally {
      await api.stop();
      relay.kill('SIGTERM');
      await relay.exited;
    }
  });

  it('a dropped listen connection comes back on its own', async () => {
    const relay = await startRelay(tdb.url, nats, {
      RELAY_POLL_INTERVAL_MS: '4000',
      RELAY_BACKOFF_MAX_MS: '300',
    });
    const api = await startApi(tdb.url);
    const { adminQuery } = await import('@orders/testkit');
    try {
      await relay.waitForLine(/listening for outbox notifications/);
      await adminQuery(tdb.adminUrl, [
        `SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name = 'orders-relay-listen' AND datname = '${tdb.name}'`,
      ]);
      await relay.waitForLine(/listen connection lost/);
      await waitFor(
        'listening again',
        async () => relay.lines.filter((l) => l.includes('listening for outbox notifications')).length >= 2,
      );
      await sleep(200);
      expect(await orderToStreamMs(api)).toBeLessThan(2000);
    } finally {
      await api.stop();
      relay.kill('SIGTERM');
      await relay.exited;
    }
  });
});

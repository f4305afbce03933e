import { setTimeout as sleep } from 'node:timers/promises';
import { createTestDatabase, startNatsServer } from '@orders/testkit';
import { sql } from 'kysely';
import { afterAll, describe, expect, it } from 'vitest';
import {
  exactlyOnce,
  natsClient,
  readStream,
  startApi,
  startRelay,
  streamCount,
  waitAllMarked,
  waitFor,
} from '../../apps/relay/test/helpers.js';
import { startOrderLoad } from './load.js';
import { startFaultyProxy } from './proxy.js';

// A slow, then stalled, then cut network between the relay and NATS, under steady order creation.
// Publishes time out while the network is frozen; the relay must retry without duplicates and without
// counting the timeouts against the rows (attempts stay 0, nothing dies).

const tdb = await createTestDatabase();
const nats = await startNatsServer();
const nc = await natsClient(nats);
const proxy = await startFaultyProxy(nats.port);
afterAll(async () => {
  await proxy.close();
  await nc.close();
  await nats.dispose();
  await tdb.drop();
});

describe('network faults between relay and NATS', () => {
  it('delay, freeze and cut: every order once in the stream, no attempts burned, the relay never exits', async () => {
    const api = await startApi(tdb.url);
    const relay = await startRelay(
      tdb.url,
      { ...nats, url: `nats://127.0.0.1:${proxy.port}` },
      {
        RELAY_PUBLISH_TIMEOUT_MS: '1000',
        RELAY_LEASE_MS: '3000',
        RELAY_BACKOFF_MAX_MS: '1000',
      },
    );
    const load = startOrderLoad(api.base, 100);
    const phases: string[] = [];
    try {
      await sleep(2000);
      phases.push('delay 250 ms');
      proxy.delay(250);
      await sleep(3000);
      phases.push('freeze 6 s');
      proxy.freeze();
      await sleep(6000);
      phases.push('pass');
      proxy.pass();
      await sleep(2000);
      phases.push('cut all connections');
      proxy.cut();
      await sleep(2000);
      phases.push('freeze 4 s, then cut');
      proxy.freeze();
      await sleep(4000);
      proxy.cut();
      proxy.pass();
      await sleep(2000);
    } finally {
      await load.stop();
    }
    try {
      const created = load.outcomes.filter((o) => o.status === 201);
      // The API does not depend on NATS: every request succeeded.
      expect(load.outcomes.filter((o) => o.status !== 201)).toEqual([]);
      await waitFor(
        `${created.length} messages`,
        async () => (await streamCount(nc, 'orders')) >= created.length,
        60_000,
        100,
      );
      await waitAllMarked(tdb.db);
      const { rows } = await sql<{ id: string; attempts: number; dead: boolean }>`
        SELECT o.id, coalesce(f.attempts, 0) AS attempts, false AS dead
        FROM outbox AS o LEFT JOIN outbox_failures AS f USING (id)`.execute(tdb.db);
      expect(rows).toHaveLength(created.length);
      const { rows: dead } = await sql<{ n: number }>`SELECT count(*)::int AS n FROM outbox_dead`.execute(
        tdb.db,
      );
      expect(dead[0]?.n).toBe(0);
      expect(rows.filter((r) => r.attempts > 0 || r.dead)).toEqual([]);
      const messages = await readStream(nc, 'orders');
      expect(
        exactlyOnce(
          messages,
          rows.map((r) => r.id),
        ),
      ).toEqual({ missing: [], duplicated: [], unexpected: [] });
      const transient = await relay.metric('outbox_publish_failures_total{kind="transient"}');
      const duplicates = await relay.metric('outbox_duplicates_total');
      console.info(
        `network faults (${phases.join(', ')}): ${created.length} orders, ${transient} transient publish failures, ` +
          `${duplicates} re-publishes recognised as duplicates, 0 lost, 0 stored twice`,
      );
      expect(transient).toBeGreaterThan(0);
      expect(relay.alive()).toBe(true);
    } finally {
      relay.kill('SIGTERM');
      await Promise.all([relay.exited, api.stop()]);
    }
  });
});

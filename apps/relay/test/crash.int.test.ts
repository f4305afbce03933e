import { silentLogger } from '@orders/logger';
import { createTestDatabase, startNatsServer } from '@orders/testkit';
import { sql } from 'kysely';
import { afterAll, describe, expect, it } from 'vitest';
import { createRelayMetrics } from '../src/metrics.js';
import { NatsLink } from '../src/nats.js';
import { createRelay } from '../src/relay.js';
import {
  exactlyOnce,
  insertBacklog,
  natsClient,
  readStream,
  startRelay,
  streamCount,
  waitAllMarked,
  waitFor,
} from './helpers.js';

const tdb = await createTestDatabase();
const nats = await startNatsServer();
const nc = await natsClient(nats);
afterAll(async () => {
  await nc.close();
  await nats.dispose();
  await tdb.drop();
});

describe('crashes', () => {
  it('a publish acked but never marked is re-published, acked as a duplicate, and stored once', async () => {
    const ids = await insertBacklog(tdb.db, 50);
    const logger = silentLogger();
    const metrics = createRelayMetrics(tdb.db);
    const link = new NatsLink({
      url: nats.url,
      stream: 'orders',
      duplicateWindowMs: 120_000,
      publishTimeoutMs: 2000,
      backoffMaxMs: 500,
      name: 'crash-test',
      logger,
    });
    let crashed = 0;
    const relay = createRelay({
      db: tdb.db,
      nats: link,
      metrics,
      logger,
      settings: {
        relayId: 'crash-test',
        ordering: 'aggregate',
        batchSize: 100,
        pollIntervalMs: 100,
        leaseMs: 1000,
        maxAttempts: 5,
        retryDelayMs: 100,
        backoffMaxMs: 500,
      },
      // The worst moment: JetStream has every message, the database has no mark. The "crash" leaves
      // the rows leased, as a killed process would.
      afterPublish: (published) => {
        if (crashed++ === 0) throw new Error(`simulated crash after ${published.length} acks`);
      },
    });
    link.start();
    relay.start();
    try {
      await waitFor(
        'the rows to be re-published and marked',
        async () => {
          const left = await tdb.db
            .selectFrom('outbox')
            .select('id')
            .where('published_at', 'is', null)
            .where('id', 'in', ids)
            .execute();
          return left.length === 0;
        },
        15_000,
      );
      expect(crashed).toBe(2);
      const duplicates = (await metrics.registry.getSingleMetricAsString('outbox_duplicates_total')).match(
        /outbox_duplicates_total (\d+)/,
      )?.[1];
      expect(Number(duplicates)).toBe(50);
      const rows = await tdb.db.selectFrom('outbox').select(['claims']).where('id', 'in', ids).execute();
      expect(rows.every((r) => r.claims === 2)).toBe(true);
      expect(exactlyOnce(await readStream(nc, 'orders'), ids)).toEqual({
        missing: [],
        duplicated: [],
        unexpected: [],
      });
    } finally {
      await relay.stop();
      await link.stop();
    }
  }, 90_000);

  it('SIGKILL three times while draining 5,000 rows: exactly one message per row', async () => {
    await tdb.db.deleteFrom('outbox').execute();
    const before = await streamCount(nc, 'orders');
    const ids = await insertBacklog(tdb.db, 5000);
    const env = { RELAY_BATCH_SIZE: '25', RELAY_LEASE_MS: '2000', RELAY_PUBLISH_TIMEOUT_MS: '1000' };
    const killedAt: number[] = [];
    for (let kill = 1; kill <= 3; kill++) {
      const relay = await startRelay(tdb.url, nats, env);
      const target = before + kill * 1000;
      await waitFor(
        `${kill * 1000} messages`,
        async () => (await streamCount(nc, 'orders')) >= target,
        30_000,
        2,
      );
      relay.kill('SIGKILL');
      const { signal } = await relay.exited;
      expect(signal).toBe('SIGKILL');
      expect(relay.alive()).toBe(false);
      killedAt.push((await streamCount(nc, 'orders')) - before);
    }
    // Every kill landed mid-drain, not after the backlog was done.
    expect(killedAt.every((n) => n < 5000)).toBe(true);
    const relay = await startRelay(tdb.url, nats, env);
    try {
      await waitFor(
        'every row marked',
        async () => {
          const left = await tdb.db
            .selectFrom('outbox')
            .select('id')
            .where('published_at', 'is', null)
            .limit(1)
            .execute();
          return left.length === 0;
        },
        60_000,
        50,
      );
      const messages = (await readStream(nc, 'orders')).slice(before);
      expect(exactlyOnce(messages, ids)).toEqual({ missing: [], duplicated: [], unexpected: [] });
      expect(messages).toHaveLength(5000);
    } finally {
      relay.kill('SIGTERM');
      await relay.exited;
    }
  }, 90_000);

  it("a SIGKILLed relay's leased rows go to a live relay at once, not after the lease", async () => {
    await tdb.db.deleteFrom('outbox').execute();
    const before = await streamCount(nc, 'orders');
    // A lease far longer than the test: only the presence lock can hand the rows over in time.
    const env = { RELAY_LEASE_MS: '120000', RELAY_BATCH_SIZE: '50' };
    const doomed = await startRelay(tdb.url, nats, env);
    const survivor = await startRelay(tdb.url, nats, { ...env, RELAY_POLL_INTERVAL_MS: '200' });
    const leasedByDoomed = async () =>
      (
        await sql<{ id: string }>`
          SELECT id FROM outbox WHERE published_at IS NULL AND locked_by LIKE ${`%-${doomed.pid}-%`}`.execute(
          tdb.db,
        )
      ).rows.map((r) => r.id);
    try {
      const ids = await insertBacklog(tdb.db, 5000);
      // Freeze the doomed relay (SIGSTOP: its connections and presence lock stay) while it holds leases.
      let held: string[] = [];
      for (let attempt = 0; attempt < 50 && held.length === 0; attempt++) {
        doomed.kill('SIGSTOP');
        held = await leasedByDoomed();
        if (held.length === 0) {
          doomed.kill('SIGCONT');
          await new Promise((r) => setTimeout(r, 2));
        }
      }
      expect(held.length).toBeGreaterThan(0);
      // A claim it had sent before freezing still completes in the database: take the set after it.
      await new Promise((r) => setTimeout(r, 300));
      held = await leasedByDoomed();
      // While it lives (frozen, not dead), the survivor leaves its leases alone and drains the rest.
      await waitFor(
        'the survivor to drain everything else',
        async () => (await streamCount(nc, 'orders')) - before >= ids.length - held.length,
        30_000,
      );
      await new Promise((r) => setTimeout(r, 500));
      expect((await leasedByDoomed()).sort()).toEqual([...held].sort());

      const killedAt = Date.now();
      doomed.kill('SIGKILL');
      await doomed.exited;
      await waitAllMarked(tdb.db, 30_000);
      // Far sooner than the 120 s lease: the survivor took the rows once the dead relay's session ended.
      expect(Date.now() - killedAt).toBeLessThan(10_000);
      const messages = (await readStream(nc, 'orders')).slice(before);
      expect(exactlyOnce(messages, ids)).toEqual({ missing: [], duplicated: [], unexpected: [] });
    } finally {
      if (doomed.alive()) doomed.kill('SIGKILL');
      survivor.kill('SIGTERM');
      await Promise.all([doomed.exited, survivor.exited]);
    }
  }, 90_000);
});

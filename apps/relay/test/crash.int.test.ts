import { setTimeout as sleep } from 'node:timers/promises';
import { claimPartitions } from '@orders/db';
import { silentLogger } from '@orders/logger';
import { sql } from 'kysely';
import { describe, expect, it } from 'vitest';
import {
  exactlyOnce,
  insertBacklog,
  readStream,
  startRelay,
  streamCount,
  unreadIds,
  waitAllMarked,
  waitFor,
} from './helpers.js';
import { inProcessRelay } from './in-process-relay.js';
import { relayTestServers } from './servers.js';

const { tdb, nats, nc } = await relayTestServers();

describe('crashes', () => {
  it('a batch acked but whose cursor was never written is re-published, acked as duplicates, and stored once', async () => {
    const ids = await insertBacklog(tdb.db, 50);
    let crashed = 0;
    const relay = inProcessRelay({
      db: tdb.db,
      natsUrl: nats.url,
      stream: 'orders',
      name: 'crash-test',
      logger: silentLogger(),
      publishTimeoutMs: 2000,
      // The worst moment: JetStream has every message, the cursor has not moved past them.
      afterPublish: (published) => {
        if (crashed++ === 0) throw new Error(`simulated crash after ${published.length} acks`);
      },
    });
    const { metrics } = relay;
    relay.start();
    try {
      await waitFor(
        'the rows to be re-published and read',
        async () => (await unreadIds(tdb.db, ids)).length === 0,
        15_000,
      );
      expect(crashed).toBe(2);
      const duplicates = (await metrics.registry.getSingleMetricAsString('outbox_duplicates_total')).match(
        /outbox_duplicates_total (\d+)/,
      )?.[1];
      expect(Number(duplicates)).toBe(50);
      expect(exactlyOnce(await readStream(nc, 'orders'), ids)).toEqual({
        missing: [],
        duplicated: [],
        unexpected: [],
      });
    } finally {
      await relay.stop();
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
      await waitAllMarked(tdb.db, 60_000);
      const messages = (await readStream(nc, 'orders')).slice(before);
      expect(exactlyOnce(messages, ids)).toEqual({ missing: [], duplicated: [], unexpected: [] });
      expect(messages).toHaveLength(5000);
    } finally {
      relay.kill('SIGTERM');
      await relay.exited;
    }
  }, 90_000);

  it("a SIGKILLed relay's partitions go to a live relay at once, not after the lease", async () => {
    await tdb.db.deleteFrom('outbox').execute();
    const before = await streamCount(nc, 'orders');
    // A lease far longer than the test: only the presence lock can hand the partitions over in time.
    const env = { RELAY_LEASE_MS: '120000', RELAY_BATCH_SIZE: '50' };
    const doomed = await startRelay(tdb.url, nats, env);
    const survivor = await startRelay(tdb.url, nats, { ...env, RELAY_POLL_INTERVAL_MS: '200' });
    const partitionsOf = async (pid: number) =>
      (
        await sql<{ partition: number }>`
          SELECT partition FROM outbox_partitions WHERE owner LIKE ${`%-${pid}-%`}`.execute(tdb.db)
      ).rows.map((r) => r.partition);
    try {
      // The two share the partitions.
      await waitFor(
        'both relays holding partitions',
        async () =>
          (await partitionsOf(doomed.pid)).length > 0 && (await partitionsOf(survivor.pid)).length > 0,
        15_000,
      );
      // Frozen (SIGSTOP: its connections and presence lock stay) while it holds partitions.
      doomed.kill('SIGSTOP');
      const held = await partitionsOf(doomed.pid);
      expect(held.length).toBeGreaterThan(0);
      const ids = await insertBacklog(tdb.db, 5000);
      const { rows } = await sql<{ id: string; partition: number }>`
        SELECT id, partition FROM outbox WHERE id = ANY(${ids}::uuid[])`.execute(tdb.db);
      const inHeld = rows.filter((r) => held.includes(r.partition)).map((r) => r.id);
      // While it lives (frozen, not dead), the survivor leaves its partitions alone and drains the rest.
      await waitFor(
        'the survivor to drain everything else',
        async () => (await streamCount(nc, 'orders')) - before >= ids.length - inHeld.length,
        30_000,
      );
      await sleep(500);
      expect((await unreadIds(tdb.db, ids)).sort()).toEqual([...inHeld].sort());
      expect(await partitionsOf(doomed.pid)).toEqual(held);

      const killedAt = Date.now();
      doomed.kill('SIGKILL');
      await doomed.exited;
      await waitAllMarked(tdb.db, 30_000);
      // Far sooner than the 120 s lease: the survivor took them once the dead relay's session ended.
      expect(Date.now() - killedAt).toBeLessThan(10_000);
      const messages = (await readStream(nc, 'orders')).slice(before);
      expect(exactlyOnce(messages, ids)).toEqual({ missing: [], duplicated: [], unexpected: [] });
    } finally {
      if (doomed.alive()) doomed.kill('SIGKILL');
      survivor.kill('SIGTERM');
      await Promise.all([doomed.exited, survivor.exited]);
    }
  }, 90_000);

  it('a claim that committed but whose answer never came back: the relay still reads those partitions', async () => {
    // The connection cut between the claim's commit and its answer (a PostgreSQL outage test hit it):
    // the database lists every partition as this relay's, and the relay knows none of them.
    const name = 'lost-claim-answer';
    await claimPartitions(tdb.db, { relayId: name, leaseMs: 30_000, known: new Map() });
    const ids = await insertBacklog(tdb.db, 40);
    const relay = inProcessRelay({
      db: tdb.db,
      natsUrl: nats.url,
      stream: 'orders',
      name,
      logger: silentLogger(),
    });
    relay.start();
    try {
      await waitFor('the rows published', async () => (await unreadIds(tdb.db, ids)).length === 0, 15_000);
      expect(relay.relay.partitions).toHaveLength(16);
      expect(exactlyOnce(await readStream(nc, 'orders'), ids)).toMatchObject({ missing: [], duplicated: [] });
    } finally {
      await relay.stop();
    }
  });
});

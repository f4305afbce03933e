import { setTimeout as sleep } from 'node:timers/promises';
import { createTestDatabase, type NatsServer, startNatsCluster } from '@orders/testkit';
import { sql } from 'kysely';
import { connect, type NatsConnection } from 'nats';
import { afterAll, describe, expect, it } from 'vitest';
import {
  exactlyOnce,
  readStream,
  startApi,
  startRelay,
  waitAllMarked,
  waitFor,
} from '../../apps/relay/test/helpers.js';
import { startOrderLoad } from './load.js';

// A three-node JetStream cluster over loopback routes and a stream with 3 replicas. Under steady order
// creation: SIGKILL the stream's leader and later restart it, then SIGKILL a follower and restart it.
// Exactly one message per order at the end, the relay never exits; the longest gap in publishing is
// reported.

const cluster = await startNatsCluster({ name: 'chaos' });
const servers = cluster.nodes;
const urls = cluster.url;
const tdb = await createTestDatabase();
let nc: NatsConnection | undefined;
afterAll(async () => {
  await nc?.close();
  await cluster.dispose();
  await tdb.drop();
});

async function streamState(c: NatsConnection) {
  const jsm = await c.jetstreamManager({ timeout: 2000 });
  return jsm.streams.info('orders');
}

describe('JetStream cluster', () => {
  it('leader and follower killed and restarted under load: one message per order, the relay keeps going', async () => {
    const api = await startApi(tdb.url);
    const relay = await startRelay(tdb.url, { ...servers[0], url: urls } as NatsServer, {
      NATS_STREAM_REPLICAS: '3',
      RELAY_PUBLISH_TIMEOUT_MS: '2000',
      RELAY_LEASE_MS: '5000',
      RELAY_BACKOFF_MAX_MS: '1000',
    });
    // The cluster elects its meta leader, then the relay creates the replicated stream.
    await waitFor(
      'the relay ready on the cluster',
      async () => (await fetch(`http://127.0.0.1:${relay.port}/ready`)).ok,
      60_000,
      250,
    );
    nc = await connect({ servers: urls.split(','), maxReconnectAttempts: -1, reconnectTimeWait: 100 });
    const client = nc;
    expect((await streamState(client)).config.num_replicas).toBe(3);

    // Publishing progress, sampled every 100 ms while the load runs.
    const samples: { at: number; messages: number }[] = [];
    let sampling = true;
    const sampler = (async () => {
      while (sampling) {
        try {
          samples.push({ at: Date.now(), messages: (await streamState(client)).state.messages });
        } catch {
          // No leader to answer right now: that is the gap being measured.
        }
        await sleep(100);
      }
    })();

    const load = startOrderLoad(api.base, 100);
    const events: string[] = [];
    try {
      await sleep(3000);
      const leaderName = (await streamState(client)).cluster?.leader ?? '';
      const leader = servers[Number(leaderName.slice(1)) - 1];
      expect(leader).toBeDefined();
      events.push(`killed leader ${leaderName}`);
      await leader?.stop({ kill: true });
      await sleep(6000);
      await leader?.start();
      events.push(`restarted ${leaderName}`);
      await sleep(5000);
      const info = await streamState(client);
      const followerName =
        info.cluster?.replicas?.find((r) => r.current)?.name ?? info.cluster?.replicas?.[0]?.name ?? '';
      const follower = servers[Number(followerName.slice(1)) - 1];
      expect(follower).toBeDefined();
      events.push(`killed follower ${followerName} (leader now ${info.cluster?.leader})`);
      await follower?.stop({ kill: true });
      await sleep(4000);
      await follower?.start();
      events.push(`restarted ${followerName}`);
      await sleep(3000);
    } finally {
      await load.stop();
    }
    try {
      const created = load.outcomes.filter((o) => o.status === 201);
      expect(load.outcomes.filter((o) => o.status !== 201)).toEqual([]);
      await waitAllMarked(tdb.db, 90_000);
      sampling = false;
      await sampler;
      const { rows } = await sql<{ id: string; attempts: number }>`
        SELECT o.id, coalesce(f.attempts, 0) AS attempts FROM outbox AS o LEFT JOIN outbox_failures AS f USING (id)`.execute(
        tdb.db,
      );
      expect(rows).toHaveLength(created.length);
      const messages = await readStream(client, 'orders');
      expect(
        exactlyOnce(
          messages,
          rows.map((r) => r.id),
        ),
      ).toEqual({ missing: [], duplicated: [], unexpected: [] });
      expect(relay.alive()).toBe(true);
      // The longest stretch without a new message while orders kept coming.
      let longest = 0;
      let since = samples[0]?.at ?? 0;
      let last = samples[0]?.messages ?? 0;
      const loadEnd = Math.max(...load.outcomes.map((o) => o.at));
      for (const s of samples) {
        if (s.at > loadEnd) break;
        if (s.messages > last) {
          longest = Math.max(longest, s.at - since);
          since = s.at;
          last = s.messages;
        }
      }
      const duplicates = await relay.metric('outbox_duplicates_total');
      // Absent (NaN) when none failed: the relay may have been on a node that kept a leader throughout.
      const transient = (await relay.metric('outbox_publish_failures_total{kind="transient"}')) || 0;
      console.info(
        `JetStream cluster (${events.join(', ')}): ${created.length} orders, each once in the R3 stream; ` +
          `longest publishing gap ${longest} ms; ${transient} transient publish failures, ${duplicates} duplicates recognised; ` +
          `rows with attempts > 0: ${rows.filter((r) => r.attempts > 0).length}`,
      );
      expect(rows.filter((r) => r.attempts > 0)).toEqual([]);
    } finally {
      relay.kill('SIGTERM');
      await Promise.all([relay.exited, api.stop()]);
    }
  });
});

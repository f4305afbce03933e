import { setTimeout as sleep } from 'node:timers/promises';
import { silentLogger } from '@orders/logger';
import { sql } from 'kysely';
import { nanos, StorageType } from 'nats';
import { beforeEach, describe, expect, it } from 'vitest';
import {
  exactlyOnce,
  insertBacklog,
  type RelayProcess,
  readStream,
  streamCount,
  unreadIds,
  waitAllMarked,
  waitFor,
  withRelay,
} from './helpers.js';
import { inProcessRelay } from './in-process-relay.js';
import { relayTestServers } from './servers.js';

// Dedup beyond the duplicate window: a row acked by JetStream but whose cursor never moved past it,
// read again after the stream has forgotten its Nats-Msg-Id, must not be stored a second time. The
// stream here remembers ids for 1 s; the relay comes back 3 s later.

const { tdb, nats, nc } = await relayTestServers();
const jsm = await nc.jetstreamManager();

let stream = '';
let n = 0;
beforeEach(async () => {
  stream = `win${++n}`;
  await sql`TRUNCATE outbox`.execute(tdb.db);
  // Created before any relay runs: the relay never changes an existing stream's window.
  await jsm.streams.add({
    name: stream,
    subjects: [`${stream}.>`],
    storage: StorageType.File,
    duplicate_window: nanos(1000),
  });
});

/** The built relay as these tests restart it (on the test's stream, publish timeout 0.5 s, lease 1 s), running `until`. */
const withRestartedRelay = (until: (relay: RelayProcess) => Promise<void>) =>
  withRelay(
    tdb.url,
    nats,
    { NATS_STREAM: stream, RELAY_PUBLISH_TIMEOUT_MS: '500', RELAY_LEASE_MS: '1000' },
    until,
  );

/** As a relay leaves a partition when it dies after writing the reach of a batch: reach over every row now committed. */
async function reachOverEverything(agoMs: number): Promise<void> {
  await sql`
    INSERT INTO outbox_cursors (partition, acked_snapshot, acked_target, acked_after_xid, acked_after_seq,
                                reach_snapshot, reach_at, written_by)
    SELECT partition, acked_snapshot, acked_target, acked_after_xid, acked_after_seq, pg_current_snapshot(),
           now() - make_interval(secs => ${agoMs / 1000}), 'gone'
    FROM outbox_cursor`.execute(tdb.db);
}

/**
 * A relay in this process that "dies" after its first acks, before its cursor moves: what it leaves
 * is a cursor behind the rows and a reach over them, as a killed process would.
 */
async function ackThenDie(): Promise<void> {
  let died = false;
  const relay = inProcessRelay({
    db: tdb.db,
    natsUrl: nats.url,
    stream,
    name: 'dies',
    logger: silentLogger(),
    duplicateWindowMs: 1000,
    settings: { batchSize: 1000, pollIntervalMs: 60_000 },
    afterPublish: () => {
      died = true;
      throw new Error('killed after the acks, before the cursor moved');
    },
  });
  relay.start();
  await waitFor('the acks', async () => died);
  await relay.stop();
}

describe('dedup beyond the duplicate window', () => {
  it('acked, killed before the cursor moved, restarted 3 s later with a 1 s window: still one message per event', async () => {
    const ids = await insertBacklog(tdb.db, 200, { stream });
    await ackThenDie();
    expect(await streamCount(nc, stream)).toBe(200);
    // The cursors are still behind every row, and their reach says the rows may be in the stream.
    expect(await unreadIds(tdb.db, ids)).toHaveLength(200);
    const { rows } = await sql<{ n: number }>`
      SELECT count(*)::int AS n FROM outbox_cursor WHERE reach_snapshot IS NOT NULL`.execute(tdb.db);
    expect(rows[0]?.n).toBeGreaterThan(0);
    await sleep(3000);

    await withRestartedRelay(async (relay) => {
      await waitAllMarked(tdb.db);
      expect(await relay.metric('outbox_resolved_total{outcome="found"}')).toBe(200);
      expect(await relay.metric('outbox_duplicates_total')).toBe(0);
    });
    const messages = await readStream(nc, stream);
    expect(messages).toHaveLength(200);
    expect(exactlyOnce(messages, ids)).toEqual({ missing: [], duplicated: [], unexpected: [] });
  }, 30_000);

  it('a row a dead relay may have published long ago, that never reached the stream, is looked up, found absent, and sent once', async () => {
    const ids = await insertBacklog(tdb.db, 50, { stream });
    // As a relay leaves its partitions when it dies between writing the reach and the publish.
    await reachOverEverything(5000);
    await withRestartedRelay(async (relay) => {
      await waitFor('50 messages', async () => (await streamCount(nc, stream)) >= 50);
      await waitFor(
        'the lookup counted',
        async () => (await relay.metric('outbox_resolved_total{outcome="absent"}')) === 50,
      );
    });
    expect(exactlyOnce(await readStream(nc, stream), ids)).toEqual({
      missing: [],
      duplicated: [],
      unexpected: [],
    });
  });

  it('a mix: only the rows already in the stream are skipped', async () => {
    const ids = await insertBacklog(tdb.db, 40, { stream });
    // Half of them reached the stream before the "crash" (published by someone with their ids).
    const js = nc.jetstream();
    for (const id of ids.slice(0, 20))
      await js.publish(`${stream}.order_created`, new TextEncoder().encode('{}'), { msgID: id });
    await reachOverEverything(3000);
    await sleep(1500); // past the 1 s window for the 20 already stored
    await withRestartedRelay(async (relay) => {
      await waitFor('40 messages', async () => (await streamCount(nc, stream)) >= 40);
      await waitAllMarked(tdb.db);
      expect(await relay.metric('outbox_resolved_total{outcome="found"}')).toBe(20);
      expect(await relay.metric('outbox_resolved_total{outcome="absent"}')).toBe(20);
    });
    expect(exactlyOnce(await readStream(nc, stream), ids)).toEqual({
      missing: [],
      duplicated: [],
      unexpected: [],
    });
  });
});

import { type ChildProcess, spawn } from 'node:child_process';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { createTestDatabase, REPO_ROOT, startNatsServer } from '@orders/testkit';
import { sql } from 'kysely';
import { DiscardPolicy, nanos, StorageType } from 'nats';
import { afterAll, beforeEach, describe, expect, it } from 'vitest';
import {
  exactlyOnce,
  insertBacklog,
  makeDead,
  markAllRead,
  natsClient,
  readStream,
  startRelay,
  streamCount,
  unreadIds,
  waitAllMarked,
  waitFor,
  withRelay,
} from './helpers.js';

// `pnpm relay <command>` against real PostgreSQL and a real nats-server: each command run as the built
// `node apps/relay/dist/cli.js`, exactly as operators (and the image) run it.

const tdb = await createTestDatabase();
const nats = await startNatsServer();
const nc = await natsClient(nats);
const jsm = await nc.jetstreamManager();
afterAll(async () => {
  await nc.close();
  await nats.dispose();
  await tdb.drop();
});

let stream = '';
let counter = 0;
beforeEach(async () => {
  // A stream of its own per test, so tests never see each other's messages.
  stream = `cli${++counter}`;
  await sql`TRUNCATE outbox, outbox_dead, outbox_failures, outbox_replays`.execute(tdb.db);
  await sql`UPDATE outbox_partitions SET owner = NULL, lease_until = NULL`.execute(tdb.db);
});

interface CliResult {
  code: number | null;
  stdout: string;
  stderr: string;
}

function cli(
  args: readonly string[],
  env: Record<string, string> = {},
): { proc: ChildProcess; done: Promise<CliResult> } {
  const proc = spawn(process.execPath, [path.join(REPO_ROOT, 'apps/relay/dist/cli.js'), ...args], {
    cwd: REPO_ROOT,
    env: {
      PATH: process.env['PATH'] ?? '',
      DATABASE_URL: tdb.url,
      NATS_URL: nats.url,
      NATS_STREAM: stream,
      ...env,
    },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let stdout = '';
  let stderr = '';
  proc.stdout?.setEncoding('utf8').on('data', (d: string) => (stdout += d));
  proc.stderr?.setEncoding('utf8').on('data', (d: string) => (stderr += d));
  const done = new Promise<CliResult>((resolve) =>
    proc.once('exit', (code) =>
      resolve({
        code,
        get stdout() {
          return stdout;
        },
        get stderr() {
          return stderr;
        },
      }),
    ),
  );
  return { proc, done };
}

const run = (args: readonly string[], env?: Record<string, string>) => cli(args, env).done;

async function createStream(duplicateWindowMs = 120_000): Promise<void> {
  await jsm.streams.add({
    name: stream,
    subjects: [`${stream}.>`],
    storage: StorageType.File,
    duplicate_window: nanos(duplicateWindowMs),
  });
}

/** Publishes the backlog with a real relay, then stops it: the outbox now holds published rows. */
async function publishWithRelay(n: number): Promise<string[]> {
  const ids = await insertBacklog(tdb.db, n, { stream });
  await withRelay(tdb.url, nats, { NATS_STREAM: stream }, async () => {
    await waitFor(`${n} messages`, async () => (await streamCount(nc, stream)) >= n, 30_000);
    await waitAllMarked(tdb.db);
  });
  return ids;
}

/**
 * `n` events published with a real relay, the stream emptied, and `relay replay --since 1h` started
 * and past its first checkpoint: the event ids and the running command.
 */
async function replayUnderWay(n: number) {
  await createStream();
  const ids = await publishWithRelay(n);
  await jsm.streams.delete(stream);
  await createStream();
  const first = cli(['replay', '--since', '1h']);
  await waitFor(
    'progress',
    async () => {
      const { rows } = await sql<{ sent: number }>`SELECT sent FROM outbox_replays`.execute(tdb.db);
      return (rows[0]?.sent ?? 0) > 0;
    },
    30_000,
    5,
  );
  return { ids, first };
}

describe('relay status', () => {
  it('reports pending, dead, published rows, partitions held, the oldest pending age, the stream and its window', async () => {
    await createStream(90_000);
    // One row read by its partition's cursor (published), then four committed after the cursor moved.
    await insertBacklog(tdb.db, 1, { stream });
    await markAllRead(tdb.db);
    const later = await insertBacklog(tdb.db, 4, { stream });
    await sql`UPDATE outbox SET created_at = now() - interval '10 minutes' WHERE id = ${later[0]}`.execute(
      tdb.db,
    );
    await makeDead(tdb.db, [later[3] ?? '']);
    // The oldest pending row's partition is held by relay r1 (live lease); another partition's lease
    // has run out: it is not held any more.
    const { rows: oldest } = await sql<{ partition: number }>`
      SELECT partition FROM outbox WHERE id = ${later[0]}`.execute(tdb.db);
    const heldPartition = oldest[0]?.partition ?? 0;
    await sql`UPDATE outbox_partitions SET owner = 'r1', lease_until = now() + interval '1 minute'
              WHERE partition = ${heldPartition}`.execute(tdb.db);
    await sql`UPDATE outbox_partitions SET owner = 'r2', lease_until = now() - interval '1 minute'
              WHERE partition = ${(heldPartition + 1) % 16}`.execute(tdb.db);

    const json = await run(['status', '--json']);
    expect(json.code, json.stderr).toBe(0);
    const report = JSON.parse(json.stdout) as Record<string, unknown>;
    expect(report).toMatchObject({
      pending: 3,
      dead: 1,
      partitions_held: 1,
      published: 1,
      stream,
      duplicate_window_ms: 90_000,
      stream_messages: 0,
    });
    expect(report).not.toHaveProperty('leased');
    expect(report['oldest_pending_age_seconds']).toBeGreaterThanOrEqual(600);
    expect(report['oldest_pending_age_seconds']).toBeLessThan(700);
    expect(typeof report['last_published_at']).toBe('string');

    const text = await run(['status']);
    expect(text.code).toBe(0);
    expect(text.stdout).toMatch(/^pending\s+3$/m);
    expect(text.stdout).toMatch(/^dead\s+1$/m);
    expect(text.stdout).toMatch(/^partitions held\s+1 of 16$/m);
    expect(text.stdout).toMatch(/^oldest pending age\s+10(\.\d)? min$/m);
    expect(text.stdout).toMatch(/^duplicate window\s+90 s$/m);
    // The partition with the oldest pending row, and who reads it.
    expect(text.stdout).toMatch(
      new RegExp(`^  partition ${heldPartition}\\s+[1-3] pending, oldest 10(\\.\\d)? min, r1$`, 'm'),
    );
  });

  it('still reports the outbox when NATS is unreachable, and says so', async () => {
    const result = await run(['status', '--json'], { NATS_URL: 'nats://127.0.0.1:1' });
    expect(result.code).toBe(0);
    const report = JSON.parse(result.stdout) as Record<string, unknown>;
    expect(report['pending']).toBe(0);
    expect(report['stream_error']).toEqual(expect.any(String));
    expect(report['duplicate_window_ms']).toBeUndefined();
  });

  it('never prints the database or NATS password', async () => {
    const url = new URL(tdb.url);
    url.password = 's3cret-pg';
    const result = await run(['status'], {
      DATABASE_URL: url.toString(),
      NATS_URL: `nats://user:s3cret-nats@127.0.0.1:1`,
    });
    expect(`${result.stdout}${result.stderr}`).not.toMatch(/s3cret/);
  });
});

describe('relay replay', () => {
  it('restores one message per event into a freshly emptied stream; a dry run sends nothing; a rerun adds nothing', async () => {
    await createStream();
    const ids = await publishWithRelay(300);
    await jsm.streams.purge(stream);
    expect(await streamCount(nc, stream)).toBe(0);

    const dry = await run(['replay', '--since', '1h', '--dry-run', '--json']);
    expect(dry.code, dry.stderr).toBe(0);
    expect(JSON.parse(dry.stdout)).toMatchObject({ dry_run: true, events: 300, sent: 0 });
    expect(dry.stderr).toMatch(/300 event\(s\) to send/);
    await sleep(200);
    expect(await streamCount(nc, stream)).toBe(0);

    const real = await run(['replay', '--since', '1h', '--json']);
    expect(real.code, real.stderr).toBe(0);
    // The purge removed messages but the stream still remembers their ids within its window: the
    // server answers duplicate for those. Stored + recognised is every event, each exactly once.
    const result = JSON.parse(real.stdout) as Record<string, number | boolean>;
    expect(result).toMatchObject({ sent: 300, failed: 0, finished: true });
    expect(Number(result['stored']) + Number(result['recognised_as_duplicates'])).toBe(300);

    // Purging keeps the dedup memory on nats-server 2.9, so the restore needs a new stream: delete it.
    await jsm.streams.delete(stream);
    await createStream();
    const restored = await run(['replay', '--since', '1h']);
    expect(restored.code, restored.stderr).toBe(0);
    expect(restored.stdout).toMatch(
      /replayed 300 event\(s\) to cli\d+: 300 stored, 0 recognised as duplicates by the stream, 0 failed/,
    );
    const messages = await readStream(nc, stream);
    expect(exactlyOnce(messages, ids)).toEqual({ missing: [], duplicated: [], unexpected: [] });
    // Same payload bytes and headers as the relay sent.
    const row = await sql<{
      id: string;
      payload: string;
    }>`SELECT id, payload::text AS payload FROM outbox LIMIT 1`.execute(tdb.db);
    const first = row.rows[0];
    expect(messages.find((m) => m.msgId === first?.id)?.data).toBe(first?.payload);

    // Run again within the window: every id is recognised, nothing is stored twice.
    const again = await run(['replay', '--since', '1h']);
    expect(again.code).toBe(0);
    expect(again.stdout).toMatch(/0 stored, 300 recognised as duplicates/);
    expect(await streamCount(nc, stream)).toBe(300);
  });

  it('takes only the range and event type asked for', async () => {
    await createStream();
    const ids = await publishWithRelay(40);
    await sql`UPDATE outbox SET created_at = now() - interval '3 hours' WHERE id = ANY(${ids.slice(0, 10)}::uuid[])`.execute(
      tdb.db,
    );
    await sql`UPDATE outbox SET event_type = 'order_status_changed' WHERE id = ANY(${ids.slice(10, 15)}::uuid[])`.execute(
      tdb.db,
    );
    await jsm.streams.delete(stream);
    await createStream();

    const byType = await run(['replay', '--since', '1h', '--event-type', 'order_status_changed', '--json']);
    expect(JSON.parse(byType.stdout)).toMatchObject({ events: 5, sent: 5 });
    const old = await run(['replay', '--since', '4h', '--until', '2h', '--json']);
    expect(JSON.parse(old.stdout)).toMatchObject({ events: 10, sent: 10 });
    const messages = await readStream(nc, stream);
    expect(exactlyOnce(messages, [...ids.slice(0, 15)])).toEqual({
      missing: [],
      duplicated: [],
      unexpected: [],
    });
  });

  it('warns when events were published longer ago than the stream duplicate window', async () => {
    // A row is published after it was created: one created longer ago than the window was published
    // longer ago too (or later, which the warning allows for). The window is long enough that the rows
    // created by this test itself stay inside it.
    await createStream(30_000);
    await publishWithRelay(20);
    await sql`UPDATE outbox SET created_at = now() - interval '5 minutes' WHERE seq <= (SELECT min(seq) + 6 FROM outbox)`.execute(
      tdb.db,
    );
    const dry = await run(['replay', '--since', '1h', '--dry-run', '--json']);
    expect(dry.code).toBe(0);
    expect(JSON.parse(dry.stdout)).toMatchObject({
      events: 20,
      older_than_duplicate_window: 7,
      duplicate_window_ms: 30_000,
    });
    expect(dry.stderr).toMatch(
      /warning: 7 of them were created \(so published\) more than 30 s ago .* will arrive a second time/,
    );
  });

  it('sends only rows their cursor has read, never the ones still pending', async () => {
    await createStream();
    const published = await publishWithRelay(10);
    const pending = await insertBacklog(tdb.db, 5, { stream });
    await jsm.streams.delete(stream);
    await createStream();
    const result = await run(['replay', '--since', '1h', '--json']);
    expect(result.code, result.stderr).toBe(0);
    expect(JSON.parse(result.stdout)).toMatchObject({ events: 10, sent: 10, stored: 10 });
    expect(exactlyOnce(await readStream(nc, stream), published)).toEqual({
      missing: [],
      duplicated: [],
      unexpected: [],
    });
    // The rows committed after the relay stopped were pending all along: not sent.
    expect(await unreadIds(tdb.db, pending)).toEqual(pending);
  });

  it('resumes an interrupted replay where it stopped: one message per event at the end', async () => {
    const { ids, first } = await replayUnderWay(20_000);
    // Killed, not asked to stop: whatever chunk was in flight is neither checkpointed nor lost.
    first.proc.kill('SIGKILL');
    await first.done;
    const { rows } = await sql<{
      sent: number;
      finished_at: Date | null;
    }>`SELECT sent, finished_at FROM outbox_replays`.execute(tdb.db);
    expect(rows[0]?.finished_at).toBeNull();
    const sentBefore = rows[0]?.sent ?? 0;
    expect(sentBefore).toBeGreaterThan(0);
    expect(sentBefore).toBeLessThan(20_000);

    const second = await run(['replay', '--since', '1h', '--json']);
    expect(second.code, second.stderr).toBe(0);
    expect(second.stderr).toMatch(/resuming replay #\d+/);
    const result = JSON.parse(second.stdout) as Record<string, number>;
    expect(result['sent']).toBe(20_000 - sentBefore);
    const messages = await readStream(nc, stream);
    expect(messages).toHaveLength(20_000);
    expect(exactlyOnce(messages, ids)).toEqual({ missing: [], duplicated: [], unexpected: [] });
  }, 90_000);

  it('stops cleanly on SIGINT after the chunk in flight, and the same command finishes the job', async () => {
    const { ids, first } = await replayUnderWay(20_000);
    first.proc.kill('SIGINT');
    const stopped = await first.done;
    if (stopped.code === 130)
      expect(stopped.stdout).toMatch(/interrupted after \d+ event\(s\).*\n.*run the same command again/);
    else expect(stopped.code).toBe(0); // it had already finished
    const again = await run(['replay', '--since', '1h']);
    expect(again.code).toBe(0);
    const messages = await readStream(nc, stream);
    expect(exactlyOnce(messages, ids)).toEqual({ missing: [], duplicated: [], unexpected: [] });
  }, 90_000);

  it('gives up on a chunk the stream keeps refusing after bounded retries (exit 1), and a rerun resumes from the checkpoint', async () => {
    await createStream();
    const ids = await publishWithRelay(1000);
    await jsm.streams.delete(stream);
    // A full stream that refuses new messages: JetStream answers each publish with a 503, a
    // transient failure. The first chunk of 500 fits, the second does not.
    await jsm.streams.add({
      name: stream,
      subjects: [`${stream}.>`],
      storage: StorageType.File,
      duplicate_window: nanos(120_000),
      max_msgs: 600,
      discard: DiscardPolicy.New,
    });
    const checkpoint = async () =>
      (
        await sql<{
          sent: number;
          finished_at: Date | null;
        }>`SELECT sent, finished_at FROM outbox_replays`.execute(tdb.db)
      ).rows;

    // The default bound, with the backoff capped low so it is reached quickly. A replay that never
    // gives up is killed by the guard and has no exit code.
    const first = cli(['replay', '--since', '1h', '--json'], { RELAY_BACKOFF_MAX_MS: '50' });
    const guard = setTimeout(() => first.proc.kill('SIGKILL'), 25_000);
    const stopped = await first.done;
    clearTimeout(guard);
    expect(stopped.code, stopped.stderr).toBe(1);
    expect(stopped.stderr).toMatch(/retry 10 of 10 in/);
    expect(stopped.stderr).toMatch(
      /error: NATS did not take the chunk after seq \d+ \(500 events\) in 11 attempt\(s\): .*; stopping \(500 of 1000 sent and checkpointed\)/,
    );
    expect(JSON.parse(stopped.stdout)).toMatchObject({
      sent: 500,
      finished: false,
      error: expect.any(String),
    });
    expect(await checkpoint()).toEqual([{ sent: 500, finished_at: null }]);

    // --retries sets the bound; the rerun resumes at the checkpoint.
    const again = await run(['replay', '--since', '1h', '--retries', '2'], { RELAY_BACKOFF_MAX_MS: '50' });
    expect(again.code).toBe(1);
    expect(again.stderr).toMatch(/resuming replay #\d+/);
    expect(again.stderr).toMatch(/in 3 attempt\(s\)/);
    expect(again.stdout).toMatch(/stopped after 0 event\(s\).*\n.*run the same command again/);
    expect(await checkpoint()).toEqual([{ sent: 500, finished_at: null }]);

    // The stream takes messages again (a new one, so nothing is left over): the same command
    // sends the rest, once each.
    await jsm.streams.delete(stream);
    await createStream();
    const done = await run(['replay', '--since', '1h', '--json']);
    expect(done.code, done.stderr).toBe(0);
    expect(JSON.parse(done.stdout)).toMatchObject({ sent: 500, finished: true, failed: 0 });
    expect(exactlyOnce(await readStream(nc, stream), ids.slice(500))).toEqual({
      missing: [],
      duplicated: [],
      unexpected: [],
    });
  }, 90_000);

  it('refuses bad arguments with the usage and exit code 2', async () => {
    for (const args of [
      ['replay'],
      ['replay', '--since', '1h', '--retries', '-1'],
      ['replay', '--since', 'yesterday'],
      ['replay', '--since', '1h', '--until', '2h'],
      ['replay', '--since', '1h', '--bogus'],
      ['frobnicate'],
    ]) {
      const result = await run(args);
      expect(result.code, args.join(' ')).toBe(2);
      expect(result.stderr).toMatch(/usage: relay <command>/);
    }
  });
});

describe('relay requeue-dead', () => {
  it('puts one dead row, then all of them, back in the log at its end; the relay then publishes them', async () => {
    await createStream();
    const ids = await insertBacklog(tdb.db, 4, { stream });
    await makeDead(tdb.db, ids.slice(0, 3), { attempts: 10, error: 'boom' });
    const { rows: pendingBefore } = await sql<{ xid: string }>`
      SELECT xid::text AS xid FROM outbox WHERE id = ${ids[3]}`.execute(tdb.db);

    const one = await run(['requeue-dead', '--id', ids[0] ?? '']);
    expect(one.code, one.stderr).toBe(0);
    expect(one.stdout).toMatch(/requeued 1 dead row/);
    const unknown = await run(['requeue-dead', '--id', ids[3] ?? '']);
    expect(unknown.code).toBe(1);
    expect(unknown.stdout).toMatch(/requeued 0 dead row.*\n.*not a dead row/);
    const all = await run(['requeue-dead']);
    expect(all.stdout).toMatch(/requeued 2 dead row/);
    // No dead letter left, no failure count carried over; every row back in the log once, with its
    // original id, the requeued ones in newer transactions than the row that never died (the end of
    // the log), all of them pending.
    const { rows } = await sql<{ dead: number; failures: number }>`
      SELECT (SELECT count(*)::int FROM outbox_dead) AS dead,
             (SELECT count(*)::int FROM outbox_failures) AS failures`.execute(tdb.db);
    expect(rows[0]).toEqual({ dead: 0, failures: 0 });
    const { rows: log } = await sql<{ id: string; later: boolean }>`
      SELECT id, xid > ${pendingBefore[0]?.xid ?? '0'}::xid8 AS later FROM outbox ORDER BY seq`.execute(
      tdb.db,
    );
    expect(log.map((r) => r.id).sort()).toEqual([...ids].sort());
    expect(
      log
        .filter((r) => r.later)
        .map((r) => r.id)
        .sort(),
    ).toEqual(ids.slice(0, 3).sort());
    expect(await unreadIds(tdb.db, ids)).toHaveLength(4);

    await withRelay(tdb.url, nats, { NATS_STREAM: stream }, async () => {
      await waitFor('4 messages', async () => (await streamCount(nc, stream)) >= 4);
      await waitAllMarked(tdb.db);
    });
    expect(exactlyOnce(await readStream(nc, stream), ids)).toEqual({
      missing: [],
      duplicated: [],
      unexpected: [],
    });
  });

  it('rejects an id that is not a UUID', async () => {
    const result = await run(['requeue-dead', '--id', 'nope']);
    expect(result.code).toBe(2);
    expect(result.stderr).toMatch(/is not a UUID/);
  });
});

describe('relay prune', () => {
  /**
   * 35 published rows (25 of them two days old), then 20 pending ones (5 two days old), and 5 dead
   * letters two days old. Returns the ids prune may delete and the ids it must keep.
   */
  async function ageRows(): Promise<{ oldPublished: string[]; keep: string[]; dead: string[] }> {
    const published = await insertBacklog(tdb.db, 35, { stream });
    await markAllRead(tdb.db);
    const pending = await insertBacklog(tdb.db, 20, { stream });
    const dead = await insertBacklog(tdb.db, 5, { stream });
    await makeDead(tdb.db, dead);
    const oldPublished = published.slice(0, 25);
    const oldPending = pending.slice(0, 5);
    await sql`UPDATE outbox SET created_at = now() - interval '2 days' WHERE id = ANY(${[...oldPublished, ...oldPending]}::uuid[])`.execute(
      tdb.db,
    );
    await sql`UPDATE outbox_dead SET created_at = now() - interval '2 days' WHERE id = ANY(${dead}::uuid[])`.execute(
      tdb.db,
    );
    expect(await unreadIds(tdb.db, [...published, ...pending])).toEqual(pending);
    return { oldPublished, keep: [...published.slice(25), ...pending], dead };
  }

  const deadLetters = async () =>
    (await sql<{ id: string }>`SELECT id FROM outbox_dead ORDER BY id`.execute(tdb.db)).rows.map((r) => r.id);

  it('deletes published rows older than the duration, in batches, and leaves unpublished and dead rows alone', async () => {
    const { keep, dead } = await ageRows();
    const result = await run(['prune', '--older-than', '1d', '--batch-size', '7']);
    expect(result.code, result.stderr).toBe(0);
    expect(result.stdout).toMatch(/deleted 25 published row/);
    // 25 rows in batches of 7: four batches reported.
    expect(result.stderr.trim().split('\n')).toEqual([
      'prune: 7 deleted',
      'prune: 14 deleted',
      'prune: 21 deleted',
      'prune: 25 deleted',
    ]);
    const { rows } = await sql<{ id: string }>`SELECT id FROM outbox`.execute(tdb.db);
    expect(rows.map((r) => r.id).sort()).toEqual([...keep].sort());
    expect(await deadLetters()).toEqual([...dead].sort());
  });

  it('is done by the relay itself on a schedule (OUTBOX_RETENTION)', async () => {
    await createStream();
    const { dead } = await ageRows();
    const relay = await startRelay(tdb.url, nats, {
      NATS_STREAM: stream,
      OUTBOX_RETENTION: '1d',
      OUTBOX_PRUNE_INTERVAL_MS: '1000',
    });
    try {
      await waitFor(
        'the relay to prune',
        async () => (await relay.metric('outbox_pruned_total')) >= 25,
        15_000,
        100,
      );
      await relay.waitForLine(/"msg":"pruned published outbox rows"/);
      // The relay also publishes the pending rows meanwhile: the old ones among them then qualify too,
      // and a later run deletes them (never before their cursor has read them).
      await waitAllMarked(tdb.db);
      await waitFor(
        'the relay to prune the old rows it published',
        async () => (await relay.metric('outbox_pruned_total')) >= 30,
        15_000,
        100,
      );
      expect(await relay.metric('outbox_pruned_total')).toBe(30);
    } finally {
      relay.kill('SIGTERM');
      await relay.exited;
    }
    const { rows } = await sql<{ old: number; recent: number; total: number }>`
      SELECT count(*) FILTER (WHERE created_at < now() - interval '1 day')::int AS old,
             count(*) FILTER (WHERE created_at > now() - interval '1 hour')::int AS recent,
             count(*)::int AS total
      FROM outbox`.execute(tdb.db);
    expect(rows[0]).toEqual({ old: 0, recent: 25, total: 25 });
    expect(await deadLetters()).toEqual([...dead].sort());
  });

  it('needs a valid duration', async () => {
    for (const args of [
      ['prune'],
      ['prune', '--older-than', 'soon'],
      ['prune', '--older-than', '1d', '--batch-size', '0'],
    ]) {
      const result = await run(args);
      expect(result.code, args.join(' ')).toBe(2);
    }
  });
});

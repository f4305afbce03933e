import { type ChildProcess, spawn } from 'node:child_process';
import path from 'node:path';
import { createTestDatabase, REPO_ROOT, startNatsServer } from '@orders/testkit';
import { sql } from 'kysely';
import { DiscardPolicy, nanos, StorageType } from 'nats';
import { afterAll, beforeEach, describe, expect, it } from 'vitest';
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
  await sql`TRUNCATE outbox, outbox_replays`.execute(tdb.db);
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
  const relay = await startRelay(tdb.url, nats, { NATS_STREAM: stream });
  try {
    await waitFor(`${n} messages`, async () => (await streamCount(nc, stream)) >= n, 30_000);
    await waitAllMarked(tdb.db);
  } finally {
    relay.kill('SIGTERM');
    await relay.exited;
  }
  return ids;
}

describe('relay status', () => {
  it('reports pending, dead, leased and published rows, the oldest pending age, the stream and its window', async () => {
    await createStream(90_000);
    await insertBacklog(tdb.db, 5, { stream });
    await sql`UPDATE outbox SET created_at = now() - interval '10 minutes' WHERE id = (SELECT id FROM outbox ORDER BY seq LIMIT 1)`.execute(
      tdb.db,
    );
    await sql`UPDATE outbox SET dead_at = now(), attempts = 10 WHERE id = (SELECT id FROM outbox ORDER BY seq DESC LIMIT 1)`.execute(
      tdb.db,
    );
    await sql`UPDATE outbox SET published_at = now() WHERE id = (SELECT id FROM outbox ORDER BY seq OFFSET 1 LIMIT 1)`.execute(
      tdb.db,
    );
    await sql`UPDATE outbox SET locked_until = now() + interval '1 minute', locked_by = 'r1' WHERE id = (SELECT id FROM outbox ORDER BY seq OFFSET 2 LIMIT 1)`.execute(
      tdb.db,
    );

    const json = await run(['status', '--json']);
    expect(json.code, json.stderr).toBe(0);
    const report = JSON.parse(json.stdout) as Record<string, unknown>;
    expect(report).toMatchObject({
      pending: 3,
      dead: 1,
      leased: 1,
      published: 1,
      stream,
      duplicate_window_ms: 90_000,
      stream_messages: 0,
    });
    expect(report['oldest_pending_age_seconds']).toBeGreaterThanOrEqual(600);
    expect(report['oldest_pending_age_seconds']).toBeLessThan(700);
    expect(typeof report['last_published_at']).toBe('string');

    const text = await run(['status']);
    expect(text.code).toBe(0);
    expect(text.stdout).toMatch(/^pending\s+3$/m);
    expect(text.stdout).toMatch(/^dead\s+1$/m);
    expect(text.stdout).toMatch(/^oldest pending age\s+10(\.\d)? min$/m);
    expect(text.stdout).toMatch(/^duplicate window\s+90 s$/m);
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
    await new Promise((r) => setTimeout(r, 200));
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
    await createStream(1000);
    await publishWithRelay(20);
    await sql`UPDATE outbox SET published_at = now() - interval '5 minutes' WHERE seq <= (SELECT min(seq) + 6 FROM outbox)`.execute(
      tdb.db,
    );
    const dry = await run(['replay', '--since', '1h', '--dry-run', '--json']);
    expect(dry.code).toBe(0);
    expect(JSON.parse(dry.stdout)).toMatchObject({
      events: 20,
      older_than_duplicate_window: 7,
      duplicate_window_ms: 1000,
    });
    expect(dry.stderr).toMatch(
      /warning: 7 of them were published more than 1 s ago .* will arrive a second time/,
    );
  });

  it('resumes an interrupted replay where it stopped: one message per event at the end', async () => {
    await createStream();
    const ids = await publishWithRelay(20_000);
    await jsm.streams.delete(stream);
    await createStream();

    const first = cli(['replay', '--since', '1h']);
    // Killed, not asked to stop: whatever chunk was in flight is neither checkpointed nor lost.
    await waitFor(
      'progress',
      async () => {
        const { rows } = await sql<{ sent: number }>`SELECT sent FROM outbox_replays`.execute(tdb.db);
        return (rows[0]?.sent ?? 0) > 0;
      },
      30_000,
      5,
    );
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
    await createStream();
    const ids = await publishWithRelay(20_000);
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
  it('puts one dead row, then all of them, back on the claim path; the relay then publishes them', async () => {
    await createStream();
    const ids = await insertBacklog(tdb.db, 4, { stream });
    await sql`UPDATE outbox SET dead_at = now(), attempts = 10, last_error = 'boom' WHERE id = ANY(${ids.slice(0, 3)}::uuid[])`.execute(
      tdb.db,
    );

    const one = await run(['requeue-dead', '--id', ids[0] ?? '']);
    expect(one.code, one.stderr).toBe(0);
    expect(one.stdout).toMatch(/requeued 1 dead row/);
    const unknown = await run(['requeue-dead', '--id', ids[3] ?? '']);
    expect(unknown.code).toBe(1);
    expect(unknown.stdout).toMatch(/requeued 0 dead row.*\n.*not a dead row/);
    const all = await run(['requeue-dead']);
    expect(all.stdout).toMatch(/requeued 2 dead row/);
    const { rows } = await sql<{ dead: number; attempts: number }>`
      SELECT count(*) FILTER (WHERE dead_at IS NOT NULL)::int AS dead, max(attempts) AS attempts FROM outbox`.execute(
      tdb.db,
    );
    expect(rows[0]).toEqual({ dead: 0, attempts: 0 });

    const relay = await startRelay(tdb.url, nats, { NATS_STREAM: stream });
    try {
      await waitFor('4 messages', async () => (await streamCount(nc, stream)) >= 4);
    } finally {
      relay.kill('SIGTERM');
      await relay.exited;
    }
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
  async function ageRows(): Promise<{ oldPublished: string[]; keep: string[] }> {
    const ids = await insertBacklog(tdb.db, 60, { stream });
    const oldPublished = ids.slice(0, 25);
    const oldPending = ids.slice(25, 30);
    const oldDead = ids.slice(30, 35);
    const newPublished = ids.slice(35, 45);
    await sql`UPDATE outbox SET created_at = now() - interval '2 days' WHERE id = ANY(${[...oldPublished, ...oldPending, ...oldDead]}::uuid[])`.execute(
      tdb.db,
    );
    await sql`UPDATE outbox SET published_at = now() WHERE id = ANY(${[...oldPublished, ...newPublished]}::uuid[])`.execute(
      tdb.db,
    );
    await sql`UPDATE outbox SET dead_at = now() WHERE id = ANY(${oldDead}::uuid[])`.execute(tdb.db);
    return { oldPublished, keep: ids.filter((id) => !oldPublished.includes(id)) };
  }

  it('deletes published rows older than the duration, in batches, and leaves unpublished and dead rows alone', async () => {
    const { keep } = await ageRows();
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
  });

  it('is done by the relay itself on a schedule (OUTBOX_RETENTION)', async () => {
    await createStream();
    await ageRows();
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
    } finally {
      relay.kill('SIGTERM');
      await relay.exited;
    }
    // The relay also published the pending rows meanwhile (the old ones among them then qualify too).
    const { rows } = await sql<{ old_published: number; dead: number; recent: number }>`
      SELECT count(*) FILTER (WHERE published_at IS NOT NULL AND created_at < now() - interval '1 day')::int AS old_published,
             count(*) FILTER (WHERE dead_at IS NOT NULL)::int AS dead,
             count(*) FILTER (WHERE created_at > now() - interval '1 hour')::int AS recent
      FROM outbox`.execute(tdb.db);
    expect(rows[0]).toEqual({ old_published: 0, dead: 5, recent: 25 });
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

import { setTimeout as sleep } from 'node:timers/promises';
import { createTestDatabase } from '@orders/testkit';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createDb, createOutboxNotifier } from '../src/index.js';

// The API's after-commit wake-up hint, as the relay's LISTEN session receives it.

const tdb = await createTestDatabase();
const listener = new pg.Client({ connectionString: tdb.url });
let received = 0;

beforeAll(async () => {
  await listener.connect();
  listener.on('notification', (n) => {
    if (n.channel === 'outbox') received++;
  });
  await listener.query('LISTEN outbox');
});
afterAll(async () => {
  await listener.end();
  await tdb.drop();
});

/** Waits until `count` notifications arrived, then a little longer to see whether more follow. */
async function notificationsAfter(count: number): Promise<number> {
  const deadline = Date.now() + 5000;
  while (received < count && Date.now() < deadline) await sleep(10);
  await sleep(200);
  return received;
}

describe('createOutboxNotifier', () => {
  it('coalesces a burst of hints into the one in flight and one after it', async () => {
    received = 0;
    const notifier = createOutboxNotifier(tdb.db);
    for (let i = 0; i < 100; i++) notifier.hint();
    await notifier.settled();
    expect(await notificationsAfter(2)).toBe(2);
  });

  it('settled() waits for the last hint, so closing the pool right after does not lose it', async () => {
    received = 0;
    const db = createDb({ url: tdb.url, poolSize: 2, connectTimeoutMs: 5000, statementTimeoutMs: 30_000 });
    const notifier = createOutboxNotifier(db, (err) => {
      throw err;
    });
    notifier.hint();
    notifier.hint();
    await notifier.settled();
    await db.destroy();
    expect(await notificationsAfter(2)).toBe(2);
  });
});

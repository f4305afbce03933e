import { outboxBacklog } from '@orders/db';
import { createTestDatabase, startNatsServer, startNodeProcess } from '@orders/testkit';
import { afterAll, describe, expect, it } from 'vitest';
import { insertBacklog, markAllRead, natsClient, RELAY_ENTRY, startRelay, waitFor } from './helpers.js';

const tdb = await createTestDatabase();
afterAll(() => tdb.drop());

/** Every outbox row read by its partition's cursor (published and acknowledged). */
async function drained(): Promise<boolean> {
  return (await outboxBacklog(tdb.db)).pending === 0;
}

describe('relay configuration', () => {
  it('refuses bad configuration with one line naming each variable', async () => {
    const relay = startNodeProcess(RELAY_ENTRY, {
      RELAY_BATCH_SIZE: '0',
      RELAY_PORT: 'http',
      NATS_STREAM: 'orders.v2',
      RELAY_LISTEN: 'maybe',
    });
    const { code } = await relay.exited;
    expect(code).toBe(2);
    expect(relay.stderr).toHaveLength(1);
    for (const variable of ['RELAY_BATCH_SIZE', 'RELAY_PORT', 'NATS_STREAM', 'RELAY_LISTEN']) {
      expect(relay.stderr[0]).toContain(variable);
    }
    // Rules across variables are checked once each variable is valid on its own.
    const crossed = startNodeProcess(RELAY_ENTRY, {
      NATS_USER: 'only-user',
      RELAY_LEASE_MS: '2000',
      RELAY_PUBLISH_TIMEOUT_MS: '5000',
    });
    expect((await crossed.exited).code).toBe(2);
    expect(crossed.stderr[0]).toContain('NATS_PASSWORD: is required when NATS_USER is set');
    expect(crossed.stderr[0]).toContain('RELAY_LEASE_MS: must be at least twice RELAY_PUBLISH_TIMEOUT_MS');
  });

  it('authenticates with NATS user and password, and never logs them', async () => {
    const nats = await startNatsServer({ args: ['--user', 'relay', '--pass', 's3cret-pass'] });
    try {
      await insertBacklog(tdb.db, 5);
      const relay = await startRelay(tdb.url, nats, { NATS_USER: 'relay', NATS_PASSWORD: 's3cret-pass' });
      await waitFor('the rows published', drained);
      relay.kill('SIGTERM');
      await relay.exited;
      expect([...relay.lines, ...relay.stderr].join('\n')).not.toContain('s3cret-pass');

      // Wrong password: not ready, nothing published, still running.
      await insertBacklog(tdb.db, 1);
      const wrong = await startRelay(tdb.url, nats, {
        NATS_USER: 'relay',
        NATS_PASSWORD: 'wrong-pass',
        RELAY_BACKOFF_MAX_MS: '300',
      });
      await wrong.waitForLine(/nats unreachable/);
      expect((await fetch(`http://127.0.0.1:${wrong.port}/ready`)).status).toBe(503);
      expect(await drained()).toBe(false);
      wrong.kill('SIGTERM');
      await wrong.exited;
      expect(wrong.lines.join('\n')).not.toContain('wrong-pass');
    } finally {
      await nats.dispose();
    }
  });

  it('authenticates with a NATS token', async () => {
    const nats = await startNatsServer({ args: ['--auth', 'tok-3141592'] });
    try {
      // Whatever an earlier test left pending counts as published: only this test's rows are waited for.
      await markAllRead(tdb.db);
      await insertBacklog(tdb.db, 3);
      const relay = await startRelay(tdb.url, nats, { NATS_TOKEN: 'tok-3141592' });
      await waitFor('the rows published', drained);
      relay.kill('SIGTERM');
      await relay.exited;
      expect(relay.lines.join('\n')).not.toContain('tok-3141592');
      // The token was what let it in: the server refuses a client without one.
      await expect(natsClient(nats)).rejects.toThrow();
    } finally {
      await nats.dispose();
    }
  });
});

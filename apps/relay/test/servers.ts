import { createTestDatabase, type NatsServer, startNatsServer, type TestDatabase } from '@orders/testkit';
import type { NatsConnection } from 'nats';
import { afterAll } from 'vitest';
import { natsClient } from './helpers.js';

/** What a relay test file runs against: its own database, nats-server and reading client. */
export interface RelayTestServers {
  readonly tdb: TestDatabase;
  readonly nats: NatsServer;
  readonly nc: NatsConnection;
}

/**
 * Starts the file's servers and closes them after its last test (client, then server, then database).
 * Call at the top of a test file.
 */
export async function relayTestServers(): Promise<RelayTestServers> {
  const tdb = await createTestDatabase();
  const nats = await startNatsServer();
  const nc = await natsClient(nats);
  afterAll(async () => {
    await nc.close();
    await nats.dispose();
    await tdb.drop();
  });
  return { tdb, nats, nc };
}

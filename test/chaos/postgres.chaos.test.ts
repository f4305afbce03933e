import { spawn } from 'node:child_process';
import { chmod, mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { REPO_ROOT, startNatsServer } from '@orders/testkit';
import pg from 'pg';
import { afterAll, describe, expect, it } from 'vitest';
import {
  exactlyOnce,
  natsClient,
  readStream,
  startApi,
  startRelay,
  streamCount,
  waitFor,
} from '../../apps/relay/test/helpers.js';
import { startThrowawayPostgres } from '../../scripts/local-services.mjs';
import { startTestPostgres } from '../throwaway-postgres.js';
import { startOrderLoad } from './load.js';

// PostgreSQL stopped and started again under steady order creation. A throwaway cluster of the test's
// own (initdb/pg_ctl on a free port), never the shared server. The API answers 503 while it is down and
// recovers without a restart; the relay reconnects; no order that got a 201 lacks its event, and no
// order exists half-written.

const dir = await mkdtemp(path.join(os.tmpdir(), 'orders-chaos-pg-'));
await chmod(dir, 0o755); // as root, the cluster runs as the postgres user, who must get in
const dataDir = path.join(dir, 'pg');
// The restart below reuses the port, which stays reserved for this process.
const started = await startTestPostgres({ dataDir });
const { port } = started;
let server = started.server;
const url = `postgres://postgres@127.0.0.1:${port}/orders`;
const nats = await startNatsServer();
const nc = await natsClient(nats);
afterAll(async () => {
  await nc.close();
  await nats.dispose();
  try {
    server.stop();
  } catch {}
  await rm(dir, { recursive: true, force: true });
});

async function migrate(): Promise<void> {
  const child = spawn(process.execPath, [path.join(REPO_ROOT, 'packages/db/dist/cli.js')], {
    env: { PATH: process.env['PATH'] ?? '', DATABASE_URL: url, LOG_LEVEL: 'warn' },
    stdio: 'inherit',
  });
  const code = await new Promise<number | null>((resolve) => child.once('exit', resolve));
  expect(code).toBe(0);
}

describe('PostgreSQL restart', () => {
  it('mid-load: 503 while down, recovery without restarts, every 201 has its event once, nothing half-written', async () => {
    await migrate();
    const api = await startApi(url, { DB_CONNECT_TIMEOUT_MS: '1000', DB_STATEMENT_TIMEOUT_MS: '3000' });
    const relay = await startRelay(url, nats, { RELAY_BACKOFF_MAX_MS: '1000' });
    const load = startOrderLoad(api.base, 100);
    let downFor = 0;
    try {
      await sleep(3000);
      const down = Date.now();
      server.stop();
      await sleep(4000);
      server = await startThrowawayPostgres({ dataDir, port });
      downFor = Date.now() - down;
      await sleep(4000);
    } finally {
      await load.stop();
    }
    try {
      const outcomes = load.outcomes;
      const byStatus = Map.groupBy(outcomes, (o) => o.status);
      const created = byStatus.get(201) ?? [];
      const unavailable = byStatus.get(503) ?? [];
      // Only 201 and 503: never a 500, never a dropped connection (the API process stayed up).
      expect([...byStatus.keys()].sort()).toEqual([201, 503]);
      expect(unavailable.length).toBeGreaterThan(0);
      // Orders are created again after the restart, by the same API process.
      const lastUnavailable = Math.max(...unavailable.map((o) => o.at));
      expect(created.filter((o) => o.at > lastUnavailable).length).toBeGreaterThan(50);
      expect(api.proc.alive()).toBe(true);
      expect(relay.alive()).toBe(true);
      expect((await fetch(`${api.base}/health`)).status).toBe(200);
      await waitFor(
        'the relay ready again',
        async () => (await fetch(`http://127.0.0.1:${relay.port}/ready`)).ok,
      );

      await waitFor(
        `${created.length} events`,
        async () => (await streamCount(nc, 'orders')) >= created.length,
        60_000,
      );
      const db = new pg.Client({ connectionString: url });
      await db.connect();
      try {
        const orders = await db.query<{ id: string; items: number; events: number }>(`
          SELECT o.id, (SELECT count(*)::int FROM order_items i WHERE i.order_id = o.id) AS items,
                 (SELECT count(*)::int FROM outbox e WHERE e.aggregate_id = o.id::text) AS events
          FROM orders o`);
        // Nothing half-written: every stored order has its two items and its one event.
        expect(orders.rows.filter((o) => o.items !== 2 || o.events !== 1)).toEqual([]);
        // Every 201 is stored (a 503 may still have committed if only the answer was lost: then it is whole).
        const stored = new Set(orders.rows.map((o) => o.id));
        expect(created.filter((o) => !stored.has(o.id ?? ''))).toEqual([]);
        await waitFor('every row read by its cursor', async () => {
          const left = await db.query<{ n: number }>(
            `SELECT count(*)::int AS n FROM outbox AS o JOIN outbox_cursor AS c USING (partition)
             WHERE NOT outbox_position_covers(o.xid, o.seq, c.acked_snapshot, c.acked_target, c.acked_after_xid,
                                              c.acked_after_seq)`,
          );
          return left.rows[0]?.n === 0;
        });
        const ids = (await db.query<{ id: string }>('SELECT id FROM outbox')).rows.map((r) => r.id);
        expect(exactlyOnce(await readStream(nc, 'orders'), ids)).toEqual({
          missing: [],
          duplicated: [],
          unexpected: [],
        });
        console.info(
          `PostgreSQL down ${downFor} ms under 100 orders/s: ${created.length} x 201, ${unavailable.length} x 503, ` +
            `${orders.rows.length} orders stored whole, ${ids.length} events each once in the stream`,
        );
      } finally {
        await db.end();
      }
    } finally {
      relay.kill('SIGTERM');
      await Promise.all([relay.exited, api.stop()]);
    }
  });
});

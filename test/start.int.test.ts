import { spawn } from 'node:child_process';
import { chmod, mkdtemp, rm } from 'node:fs/promises';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { REPO_ROOT, startOnReservedPorts } from '@orders/testkit';
import { connect } from 'nats';
import { afterAll, describe, expect, it } from 'vitest';

// The README's start command on a machine where PostgreSQL and nats-server are installed but nothing
// answers on the configured ports: `node scripts/start.mjs` (what `scripts/run.sh start` execs after
// the build) starts a throwaway pair under the data directory, runs migrate, API and relay on them,
// and stops everything on SIGTERM. (With the services already running, the other process tests cover it.)

const answers = (port: number) =>
  new Promise<boolean>((resolve) => {
    const s = net.connect({ host: '127.0.0.1', port });
    s.once('connect', () => {
      s.destroy();
      resolve(true);
    });
    s.once('error', () => resolve(false));
  });

async function waitFor(what: string, probe: () => Promise<boolean>, timeoutMs = 60_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (await probe().catch(() => false)) return;
    await sleep(200);
  }
  throw new Error(`timed out waiting for ${what}`);
}

let dataDir = '';
afterAll(async () => {
  if (dataDir) await rm(dataDir, { recursive: true, force: true });
});

describe('scripts/run.sh start with nothing running', () => {
  it('starts a throwaway PostgreSQL and nats-server, serves orders end to end, and stops them all on SIGTERM', async () => {
    dataDir = await mkdtemp(path.join(os.tmpdir(), 'orders-start-'));
    // mkdtemp makes it private; as root the throwaway cluster runs as the postgres user, who must get in.
    await chmod(dataDir, 0o755);
    // Four reserved ports; everything again on four others if a server found its port taken (the
    // script stops what it started when one of them fails; the data directory is reused).
    const launched = await startOnReservedPorts(6, async (reservations) => {
      const [pgPort, natsPort, apiPort, relayPort, inventoryPort, inventoryRelayPort] = reservations.map(
        (r) => r.port,
      ) as [number, number, number, number, number, number];
      const child = spawn(process.execPath, ['scripts/start.mjs'], {
        cwd: REPO_ROOT,
        env: {
          PATH: process.env['PATH'] ?? '',
          ORDERS_DATA_DIR: dataDir,
          DB_HOST: '127.0.0.1',
          DB_PORT: String(pgPort),
          NATS_URL: `nats://127.0.0.1:${natsPort}`,
          SERVICE_PORT: String(apiPort),
          RELAY_PORT: String(relayPort),
          INVENTORY_PORT: String(inventoryPort),
          INVENTORY_RELAY_PORT: String(inventoryRelayPort),
          HOST: '127.0.0.1',
          LOG_LEVEL: 'warn',
        },
        stdio: ['ignore', 'pipe', 'pipe'],
      });
      let output = '';
      child.stdout?.setEncoding('utf8').on('data', (d: string) => (output += d));
      child.stderr?.setEncoding('utf8').on('data', (d: string) => (output += d));
      const exited = new Promise<number | null>((resolve) => child.once('close', (code) => resolve(code)));
      const early = exited.then((code) => {
        throw new Error(`start.mjs exited (${code})`);
      });
      try {
        await Promise.race([
          (async () => {
            await waitFor('the API', async () => (await fetch(`http://127.0.0.1:${apiPort}/health`)).ok);
            await waitFor('the relay', async () => (await fetch(`http://127.0.0.1:${relayPort}/ready`)).ok);
            await waitFor(
              'the inventory',
              async () => (await fetch(`http://127.0.0.1:${inventoryPort}/ready`)).ok,
            );
            await waitFor(
              'the inventory relay',
              async () => (await fetch(`http://127.0.0.1:${inventoryRelayPort}/ready`)).ok,
            );
          })(),
          early,
        ]);
      } catch (err) {
        child.kill('SIGTERM');
        await exited;
        throw new Error(`${(err as Error).message}; start.mjs said:\n${output}`, { cause: err });
      } finally {
        early.catch(() => {});
      }
      return { child, exited, output: () => output, pgPort, natsPort, apiPort, relayPort, inventoryPort };
    });
    const { child, exited, pgPort, natsPort, apiPort, inventoryPort } = launched;
    const output = () => launched.output();
    try {
      // One clear line per throwaway server.
      expect(output()).toMatch(
        new RegExp(`start: nothing answers on 127\\.0\\.0\\.1:${pgPort}: starting a throwaway PostgreSQL`),
      );
      expect(output()).toMatch(
        new RegExp(`start: nothing answers on 127\\.0\\.0\\.1:${natsPort}: starting a throwaway nats-server`),
      );

      const res = await fetch(`http://127.0.0.1:${apiPort}/orders`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({
          customer_id: crypto.randomUUID(),
          items: [{ sku: 'WIDGET-001', qty: 1, price: 5 }],
        }),
      });
      expect(res.status).toBe(201);
      const order = (await res.json()) as { id: string };
      const nc = await connect({ servers: `nats://127.0.0.1:${natsPort}` });
      try {
        const jsm = await nc.jetstreamManager();
        await waitFor(
          'the event',
          async () => (await jsm.streams.info('orders')).state.messages === 1,
          15_000,
        );
        expect((await jsm.streams.getMessage('orders', { seq: 1 })).string()).toContain(order.id);
        // The inventory (its database created and migrated by the script) consumed it: an unknown sku,
        // so reservation_failed, published by the inventory's relay to stream `inventory`.
        await waitFor(
          'the inventory event',
          async () => (await jsm.streams.info('inventory')).state.messages === 1,
          15_000,
        );
        const failed = await jsm.streams.getMessage('inventory', { seq: 1 });
        expect(failed.subject).toBe('inventory.reservation_failed');
        expect(failed.json()).toMatchObject({ order_id: order.id, reason: 'unknown_sku' });
        const missing = await fetch(`http://127.0.0.1:${inventoryPort}/inventory/WIDGET-001`);
        expect(missing.status).toBe(404);
      } finally {
        await nc.close();
      }
    } finally {
      child.kill('SIGTERM');
    }
    expect(await exited, output()).toBe(0);
    expect(await answers(pgPort)).toBe(false);
    expect(await answers(natsPort)).toBe(false);
  }, 120_000);
});

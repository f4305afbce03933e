import { existsSync } from 'node:fs';
import path from 'node:path';
import {
  createTestDatabaseFrom,
  REPO_ROOT,
  type ServiceProcess,
  startServerProcess,
  type TestDatabaseOf,
} from '@orders/testkit';
import { inventoryMigrationSources } from '../src/migrations.js';
import type { InventoryDatabase } from '../src/schema.js';

export const INVENTORY_ENTRY = 'apps/inventory/dist/main.js';
if (!existsSync(path.join(REPO_ROOT, INVENTORY_ENTRY))) {
  throw new Error(`${INVENTORY_ENTRY} is missing: run \`pnpm build\` first (pnpm test does)`);
}

/** A database of the inventory's own, migrated as `pnpm --filter ./apps/inventory migrate` does. */
export function createInventoryDatabase(): Promise<TestDatabaseOf<InventoryDatabase>> {
  return createTestDatabaseFrom<InventoryDatabase>(inventoryMigrationSources(), { prefix: 'inventory_test' });
}

export interface InventoryProcess extends ServiceProcess {
  readonly port: number;
  readonly base: string;
  /** A counter or gauge without labels, from /metrics. */
  metric(name: string): Promise<number>;
}

/** Starts the built service as `node apps/inventory/dist/main.js` and waits for it to consume. */
export async function startInventory(
  databaseUrl: string,
  natsUrl: string,
  env: Record<string, string> = {},
): Promise<InventoryProcess> {
  const { proc, port } = await startServerProcess(
    INVENTORY_ENTRY,
    (port) => ({
      INVENTORY_DATABASE_URL: databaseUrl,
      NATS_URL: natsUrl,
      INVENTORY_PORT: String(port),
      HOST: '127.0.0.1',
      LOG_LEVEL: 'info',
      ...env,
    }),
    (p) => p.waitForLine(/"msg":"consuming"/),
  );
  const base = `http://127.0.0.1:${port}`;
  return {
    ...proc,
    port,
    base,
    async metric(name: string) {
      const text = await (await fetch(`${base}/metrics`)).text();
      const line = text.split('\n').find((l) => l.startsWith(`${name} `));
      return line ? Number(line.split(' ')[1]) : Number.NaN;
    },
  };
}

export async function putStock(base: string, sku: string, qty: number): Promise<Response> {
  return fetch(`${base}/inventory/${encodeURIComponent(sku)}`, {
    method: 'PUT',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ qty_on_hand: qty }),
  });
}

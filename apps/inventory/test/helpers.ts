import { existsSync } from 'node:fs';
import path from 'node:path';
import {
  createTestDatabaseFrom,
  REPO_ROOT,
  type ServiceOnPort,
  startServiceProcess,
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

export type InventoryProcess = ServiceOnPort;

/** Starts the built service as `node apps/inventory/dist/main.js` and waits for it to consume. */
export function startInventory(
  databaseUrl: string,
  natsUrl: string,
  env: Record<string, string> = {},
): Promise<InventoryProcess> {
  return startServiceProcess(
    INVENTORY_ENTRY,
    'INVENTORY_PORT',
    { INVENTORY_DATABASE_URL: databaseUrl, NATS_URL: natsUrl, ...env },
    /"msg":"consuming"/,
  );
}

export async function putStock(base: string, sku: string, qty: number): Promise<Response> {
  return fetch(`${base}/inventory/${encodeURIComponent(sku)}`, {
    method: 'PUT',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ qty_on_hand: qty }),
  });
}

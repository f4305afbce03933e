import { silentLogger } from '@orders/logger';
import { createTestDatabase, type TestDatabase } from '@orders/testkit';
import { createApp } from '../src/app.js';

export const CUSTOMER = '550e8400-e29b-41d4-a716-446655440000';

/** The seed README's create-order body. */
export const SEED_ORDER = {
  customer_id: CUSTOMER,
  items: [
    { sku: 'WIDGET-001', qty: 2, price: 19.99 },
    { sku: 'GADGET-002', qty: 1, price: 49.99 },
  ],
  metadata: { source: 'web' },
};

export const TEST_LIMITS = { bodyBytes: 64 * 1024, itemsPerOrder: 100, metadataBytes: 4096 };

/** An app on a database of the file's own. */
export async function setupApi(options: { poolSize?: number } = {}): Promise<{
  tdb: TestDatabase;
  app: ReturnType<typeof createApp>['app'];
  metrics: ReturnType<typeof createApp>['metrics'];
}> {
  const tdb = await createTestDatabase(options);
  const { app, metrics } = createApp({
    db: tdb.db,
    logger: silentLogger(),
    config: { serviceName: 'orders-test', limits: TEST_LIMITS, stream: 'orders' },
  });
  return { tdb, app, metrics };
}

export function postJson(
  app: { request: (path: string, init: RequestInit) => Response | Promise<Response> },
  path: string,
  body: unknown,
  method = 'POST',
) {
  return app.request(path, {
    method,
    headers: { 'content-type': 'application/json' },
    body: typeof body === 'string' ? body : JSON.stringify(body),
  });
}

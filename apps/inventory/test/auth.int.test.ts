import { startNatsServer, startTestIssuer } from '@orders/testkit';
import { connect, StorageType } from 'nats';
import { afterAll, describe, expect, it } from 'vitest';
import { createInventoryDatabase, startInventory } from './helpers.js';

// The inventory checks its callers as the orders API does (packages/auth), with scopes of its own:
// the built process, a JWKS server and tokens of the test's own, a real nats-server and database.

const tdb = await createInventoryDatabase();
const nats = await startNatsServer();
const issuer = await startTestIssuer('inventory');
// The stream the inventory consumes (the orders relay creates it in production).
const nc = await connect({ servers: nats.url });
await (await nc.jetstreamManager()).streams.add({
  name: 'orders',
  subjects: ['orders.>'],
  storage: StorageType.File,
});
await nc.close();
const METRICS_TOKEN = 'a-scraper-token-of-16+';
const inventory = await startInventory(tdb.url, nats.url, {
  AUTH_JWKS_URL: issuer.jwks.url,
  AUTH_ISSUER: issuer.issuer,
  AUTH_AUDIENCE: issuer.audience,
  METRICS_TOKEN,
});
afterAll(async () => {
  inventory.kill('SIGTERM');
  await inventory.exited;
  await issuer.jwks.stop();
  await nats.dispose();
  await tdb.drop();
});

const put = (token: string | undefined, qty = 7) =>
  fetch(`${inventory.base}/inventory/AUTH-1`, {
    method: 'PUT',
    headers: {
      'content-type': 'application/json',
      ...(token !== undefined ? { authorization: `Bearer ${token}` } : {}),
    },
    body: JSON.stringify({ qty_on_hand: qty }),
  });
const get = (token: string | undefined) =>
  fetch(`${inventory.base}/inventory/AUTH-1`, {
    headers: token !== undefined ? { authorization: `Bearer ${token}` } : {},
  });

describe('inventory authentication (inventory:read, inventory:write)', () => {
  it('refuses a call without a token with 401 and a Bearer challenge, as a problem document', async () => {
    const res = await put(undefined);
    expect(res.status).toBe(401);
    expect(res.headers.get('www-authenticate')).toMatch(/^Bearer/);
    expect(res.headers.get('content-type')).toMatch(/application\/problem\+json/);
    expect(await res.json()).toMatchObject({ title: 'Unauthorized', status: 401, code: 'missing_token' });
  });

  it('refuses a token of the orders scopes with 403 insufficient_scope', async () => {
    const res = await put(await issuer.token(['orders:read', 'orders:write']));
    expect(res.status).toBe(403);
    expect(res.headers.get('www-authenticate')).toMatch(/insufficient_scope/);
    expect(await res.json()).toMatchObject({ title: 'Forbidden', code: 'insufficient_scope' });
  });

  it('lets inventory:write set stock and inventory:read (only) read it, not set it', async () => {
    expect((await put(await issuer.token(['inventory:write']))).status).toBe(201);
    const reader = await issuer.token(['inventory:read']);
    const res = await get(reader);
    expect(res.status).toBe(200);
    expect(await res.json()).toMatchObject({ sku: 'AUTH-1', qty_on_hand: 7, reserved_qty: 0 });
    expect((await put(reader, 9)).status).toBe(403);
    expect((await get(await issuer.token(['inventory:write']))).status).toBe(403);
  });

  it('keeps /health and /ready open and /metrics behind METRICS_TOKEN', async () => {
    expect((await fetch(`${inventory.base}/health`)).status).toBe(200);
    expect((await fetch(`${inventory.base}/ready`)).status).toBe(200);
    expect((await fetch(`${inventory.base}/metrics`)).status).toBe(401);
    const scrape = await fetch(`${inventory.base}/metrics`, {
      headers: { authorization: `Bearer ${METRICS_TOKEN}` },
    });
    expect(scrape.status).toBe(200);
  });

  it('logs the caller, never the token', async () => {
    const token = await issuer.token(['inventory:read']);
    await get(token);
    const line = inventory.lines.find((l) => l.includes('"msg":"request"') && l.includes('test-client'));
    expect(line).toBeDefined();
    expect(inventory.lines.join('\n')).not.toContain(token);
  });
});

import { createTestDatabase, startNatsServer, startTestIssuer } from '@orders/testkit';
import { afterAll, describe, expect, it } from 'vitest';
import { natsClient, readStream, startApi, startRelay, streamCount, waitFor } from './helpers.js';

// Who made a change, from the bearer token to the NATS message (the `actor` header of the contract),
// with real processes: the API with authentication on, the relay, a JWKS server of the test's own.

const tdb = await createTestDatabase();
const nats = await startNatsServer();
const nc = await natsClient(nats);
const issuer = await startTestIssuer();
const api = await startApi(tdb.url, {
  AUTH_JWKS_URL: issuer.jwks.url,
  AUTH_ISSUER: issuer.issuer,
  AUTH_AUDIENCE: issuer.audience,
});
const relay = await startRelay(tdb.url, nats);
afterAll(async () => {
  relay.kill('SIGTERM');
  await Promise.all([relay.exited, api.stop()]);
  await nc.close();
  await nats.dispose();
  await issuer.jwks.stop();
  await tdb.drop();
});

describe('the actor header', () => {
  it("carries the token's sub on created and status events, and never the token", async () => {
    const token = await issuer.token(['orders:write'], { sub: 'svc-checkout' });
    const send = async (path: string, body: unknown, method = 'POST') => {
      const res = await fetch(`${api.base}${path}`, {
        method,
        headers: { 'content-type': 'application/json', authorization: `Bearer ${token}` },
        body: JSON.stringify(body),
      });
      expect(res.status).toBeLessThan(300);
      return (await res.json()) as { id: string };
    };
    const order = await send('/orders', {
      customer_id: crypto.randomUUID(),
      items: [{ sku: 'WIDGET-001', qty: 1, price: 1.5 }],
    });
    await send(`/orders/${order.id}`, { status: 'placed' }, 'PATCH');
    await waitFor('2 messages', async () => (await streamCount(nc, 'orders')) >= 2);
    const messages = await readStream(nc, 'orders');
    expect(messages.map((m) => [m.subject, m.headers['actor']])).toEqual([
      ['orders.order_created', 'svc-checkout'],
      ['orders.order_status_changed', 'svc-checkout'],
    ]);
    expect(JSON.stringify(messages)).not.toContain(token.split('.')[2]);
  });
});

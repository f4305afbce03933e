import net from 'node:net';
import { createTestDatabase, freePort, startApiProcess } from '@orders/testkit';
import { sql } from 'kysely';
import { afterAll, describe, expect, it } from 'vitest';
import { SEED_ORDER, testApp } from './helpers.js';

// Error bodies carry no SQL, no stack trace, no internal host, port or connection string, whatever
// failed underneath; oversized request headers are refused by the server itself.

const tdb = await createTestDatabase();
afterAll(() => tdb.drop());

// What must never reach a client.
const LEAKS = [
  /\b(select|insert into|update \w+ set|delete from|relation "|syntax error at)\b/i,
  /\bat [^\s]+ \(?[^\s]*\.(js|ts|mjs):\d+/, // stack frames
  /node_modules|\/work\/|apps\/api/,
  /ECONNREFUSED|ETIMEDOUT|ENOTFOUND/,
  /127\.0\.0\.1|localhost|postgres(ql)?:\/\//i,
];

function expectNoLeak(text: string) {
  for (const pattern of LEAKS) expect(text, `matches ${pattern}`).not.toMatch(pattern);
}

describe('error bodies', () => {
  it('a database that refuses connections: 503 bodies name no host, port or error code', async () => {
    const port = await freePort();
    const down = testApp(
      (await import('@orders/db')).createDb({
        url: `postgres://postgres:hunter2@127.0.0.1:${port}/orders`,
        poolSize: 2,
        connectTimeoutMs: 500,
        statementTimeoutMs: 1000,
      }),
    ).app;
    for (const [path, init] of [
      [
        '/orders',
        { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(SEED_ORDER) },
      ],
      [`/orders/${crypto.randomUUID()}`, {}],
      ['/orders', {}],
      ['/health', {}],
    ] as const) {
      const res = await down.request(path, init);
      expect(res.status).toBe(503);
      const text = await res.text();
      expectNoLeak(text);
      expect(text).not.toContain('hunter2');
    }
  });

  it('a query the database rejects (a table gone): a 500 with only the request id to quote', async () => {
    const own = await createTestDatabase();
    try {
      const { app } = testApp(own.db);
      await sql`DROP TABLE order_items, orders CASCADE`.execute(own.db);
      for (const [path, init] of [
        [
          '/orders',
          {
            method: 'POST',
            headers: { 'content-type': 'application/json' },
            body: JSON.stringify(SEED_ORDER),
          },
        ],
        [`/orders/${crypto.randomUUID()}`, {}],
        ['/orders?limit=5', {}],
      ] as const) {
        const res = await app.request(path, init);
        expect(res.status).toBe(500);
        const body = await res.json();
        expect(body).toMatchObject({ status: 500, code: 'internal_error' });
        expect(typeof body.request_id === 'string' || res.headers.get('x-request-id')).toBeTruthy();
        expectNoLeak(JSON.stringify(body));
      }
    } finally {
      await own.drop();
    }
  });

  it('every 4xx body from malformed input is free of internals too', async () => {
    const { app } = testApp(tdb.db);
    const bodies = [
      '{"customer_id": "x"',
      '{"customer_id": 1, "items": "many"}',
      JSON.stringify({ ...SEED_ORDER, items: [{ sku: 'A', qty: 1e308, price: -1 }] }),
      JSON.stringify({ ...SEED_ORDER, metadata: { a: '\u0000' } }),
    ];
    for (const body of bodies) {
      const res = await app.request('/orders', {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body,
      });
      expect(res.status).toBeGreaterThanOrEqual(400);
      expect(res.status).toBeLessThan(500);
      expectNoLeak(await res.text());
    }
  });
});

describe('request header limits', () => {
  it('the API process answers 431 to oversized headers and keeps serving', async () => {
    const { proc, port } = await startApiProcess(tdb.url);
    try {
      // Node's default limit is 16 KiB of headers: send 20 KiB in one header line.
      const answer = await new Promise<string>((resolve) => {
        const socket = net.connect(port, '127.0.0.1', () => {
          socket.write(`GET /health HTTP/1.1\r\nHost: x\r\nX-Big: ${'a'.repeat(20 * 1024)}\r\n\r\n`);
        });
        let data = '';
        socket.on('data', (d) => (data += d.toString()));
        socket.on('end', () => resolve(data));
        socket.on('close', () => resolve(data));
        // The server closes right after its answer; a reset may follow what it sent.
        socket.on('error', () => resolve(data));
      });
      expect(answer).toMatch(/^HTTP\/1\.1 431 /);
      expect((await fetch(`http://127.0.0.1:${port}/health`)).status).toBe(200);
    } finally {
      proc.kill('SIGTERM');
      await proc.exited;
    }
  });
});

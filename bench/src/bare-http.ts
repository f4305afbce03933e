// Server process: the HTTP ceilings for creating orders. A handler that does what the API's POST
// /orders does at the database (the same one statement: order, items, outbox row) and answers 201
// with the order, without validation, metrics or logging, served two ways:
//   BARE_HTTP=node  plain node:http, no framework;
//   BARE_HTTP=hono  Hono on @hono/node-server (the API's framework and adapter), one route.
// Next to the API and the database baseline they split the API's gap: what HTTP on Node costs on
// this machine, what the framework adds, and what the API's own layers add on top.
// Env: DATABASE_URL, SERVICE_PORT, NATS_STREAM, BARE_HTTP.
import { createServer, type Server } from 'node:http';
import { serve } from '@hono/node-server';
import { createDb, createOutboxNotifier, insertOrderWithEvent } from '@orders/db';
import { Hono } from 'hono';
import { orderWithEvent } from './payload.js';

type OrderInput = Parameters<typeof orderWithEvent>[1];

const url = process.env['DATABASE_URL'] ?? '';
const port = Number(process.env['SERVICE_PORT'] ?? 8001);
const stream = process.env['NATS_STREAM'] ?? 'orders';
const mode = process.env['BARE_HTTP'] ?? 'node';
const db = createDb(
  { url, poolSize: 16, connectTimeoutMs: 5000, statementTimeoutMs: 30_000 },
  { sessionSettings: { 'outbox.notify': 'off' } },
);
const notifier = createOutboxNotifier(db);

async function create(input: OrderInput) {
  const { order, event, total, iso } = orderWithEvent(stream, input);
  await insertOrderWithEvent(db, order, event);
  notifier.hint();
  return { ...order, status: 'draft', total_amount: total, created_at: iso, updated_at: iso };
}

function nodeServer(): Server {
  return createServer((req, res) => {
    if (req.method === 'GET' && req.url === '/health') {
      res.writeHead(200, { 'content-type': 'application/json' }).end('{"status":"ok"}');
      return;
    }
    let body = '';
    req.setEncoding('utf8');
    req.on('data', (chunk: string) => {
      body += chunk;
    });
    req.on('end', () => {
      create(JSON.parse(body)).then(
        (out) => res.writeHead(201, { 'content-type': 'application/json' }).end(JSON.stringify(out)),
        () => res.writeHead(500).end(),
      );
    });
  }).listen(port, '127.0.0.1');
}

function honoServer(): Server {
  const app = new Hono();
  app.get('/health', (c) => c.json({ status: 'ok' }));
  app.post('/orders', async (c) => c.json(await create(await c.req.json<OrderInput>()), 201));
  return serve({ fetch: app.fetch, port, hostname: '127.0.0.1' }) as Server;
}

const server = mode === 'hono' ? honoServer() : nodeServer();
process.on('SIGTERM', () => {
  server.close();
  server.closeAllConnections();
  void db.destroy();
});

// Server process: the HTTP ceiling for creating orders. A bare node:http handler that does what the
// API's POST /orders does at the database (the same one statement: order, items, outbox row) and
// answers 201 with the order, without a framework, validation, metrics or logging. Next to the API
// and the database baseline it splits the API's gap in two: what HTTP on Node costs on this machine,
// and what the API adds to it. Env: DATABASE_URL, SERVICE_PORT, NATS_STREAM.
import { randomUUID } from 'node:crypto';
import { createServer } from 'node:http';
import { createDb, createOutboxNotifier, insertOrderWithEvent, type NewOutboxEvent } from '@orders/db';
import { orderCreatedPayload } from '@orders/events';

const url = process.env['DATABASE_URL'] ?? '';
const port = Number(process.env['SERVICE_PORT'] ?? 8001);
const stream = process.env['NATS_STREAM'] ?? 'orders';
const db = createDb(
  { url, poolSize: 16, connectTimeoutMs: 5000, statementTimeoutMs: 30_000 },
  { sessionSettings: { 'outbox.notify': 'off' } },
);
const notifier = createOutboxNotifier(db);

interface Input {
  customer_id: string;
  items: { sku: string; qty: number; price: number }[];
}

async function create(input: Input): Promise<string> {
  const createdAt = new Date();
  const iso = createdAt.toISOString();
  const id = randomUUID();
  const items = input.items.map((i) => ({
    id: randomUUID(),
    sku: i.sku,
    qty: i.qty,
    price: i.price.toFixed(2),
  }));
  const total = input.items.reduce((sum, i) => sum + Math.round(i.price * 100) * i.qty, 0) / 100;
  const order = {
    id,
    customer_id: input.customer_id,
    total_amount: total.toFixed(2),
    metadata: {},
    created_at: createdAt,
    items,
  };
  const event: NewOutboxEvent = {
    id: randomUUID(),
    aggregateType: 'order',
    aggregateId: id,
    eventType: 'order_created',
    subject: `${stream}.order_created`,
    payload: orderCreatedPayload({
      id,
      customer_id: input.customer_id,
      total_amount: total,
      created_at: iso,
      items: items.map((i) => ({
        id: i.id,
        sku: i.sku,
        qty: i.qty,
        price: Number(i.price),
        created_at: iso,
      })),
    }),
    createdAt,
  };
  await insertOrderWithEvent(db, order, event);
  notifier.hint();
  return JSON.stringify({
    ...order,
    status: 'pending',
    total_amount: total,
    updated_at: iso,
    created_at: iso,
  });
}

const server = createServer((req, res) => {
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
    create(JSON.parse(body) as Input).then(
      (out) => res.writeHead(201, { 'content-type': 'application/json' }).end(out),
      () => res.writeHead(500).end(),
    );
  });
});
server.listen(port, '127.0.0.1');
process.on('SIGTERM', () => {
  server.close();
  server.closeAllConnections();
  void db.destroy();
});

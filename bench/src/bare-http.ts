// Server process: the HTTP ceiling for creating orders. A bare node:http handler that does what the
// API's POST /orders does at the database (the same one statement: order, items, outbox row) and
// answers 201 with the order, without a framework, validation, metrics or logging. Next to the API
// and the database baseline it splits the API's gap in two: what HTTP on Node costs on this machine,
// and what the API adds to it. Env: DATABASE_URL, SERVICE_PORT, NATS_STREAM.
import { createServer } from 'node:http';
import { createDb, createOutboxNotifier, insertOrderWithEvent } from '@orders/db';
import { orderWithEvent } from './payload.js';

const url = process.env['DATABASE_URL'] ?? '';
const port = Number(process.env['SERVICE_PORT'] ?? 8001);
const stream = process.env['NATS_STREAM'] ?? 'orders';
const db = createDb(
  { url, poolSize: 16, connectTimeoutMs: 5000, statementTimeoutMs: 30_000 },
  { sessionSettings: { 'outbox.notify': 'off' } },
);
const notifier = createOutboxNotifier(db);

async function create(input: Parameters<typeof orderWithEvent>[1]): Promise<string> {
  const { order, event, total, iso } = orderWithEvent(stream, input);
  await insertOrderWithEvent(db, order, event);
  notifier.hint();
  return JSON.stringify({ ...order, status: 'draft', total_amount: total, created_at: iso, updated_at: iso });
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
    create(JSON.parse(body)).then(
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

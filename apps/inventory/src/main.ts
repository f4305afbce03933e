import type { Server } from 'node:http';
import { serve } from '@hono/node-server';
import { startServiceVerifier } from '@orders/auth';
import { loadInventoryConfig, redactUrl } from '@orders/config';
import { type Consumer, createConsumer, createConsumerMetrics, startInboxRetention } from '@orders/consumer';
import { createDb } from '@orders/db';
import { loadConfigOrExit, shutDownOnAbort, stopOnSignals } from '@orders/lifecycle';
import { createLogger } from '@orders/logger';
import { natsConnectionOptions } from '@orders/nats-connection';
import { connect, type NatsConnection } from 'nats';
import { collectDefaultMetrics, Registry } from 'prom-client';
import { createInventoryApp } from './app.js';
import { createInventoryHandler } from './handler.js';
import type { InventoryDatabase } from './schema.js';

// The inventory process: the only place that reads the environment, listens and handles signals.

const config = loadConfigOrExit(() => loadInventoryConfig());

const logger = createLogger({ name: config.serviceName, level: config.logLevel });
const db = createDb<InventoryDatabase>(config.database, { logger, applicationName: config.serviceName });
const registry = new Registry();
collectDefaultMetrics({ register: registry });
// Set once NATS first answers; until then the service is alive (/health) but not ready.
let consumer: Consumer | undefined;
const metrics = createConsumerMetrics(registry, async () => consumer?.position());
const retention =
  config.consumer.inboxRetentionMs > 0
    ? startInboxRetention({
        db,
        consumer: config.consumer.name,
        logger,
        retentionMs: config.consumer.inboxRetentionMs,
        intervalMs: config.consumer.pruneIntervalMs,
        onPruned: (n) => metrics.pruned.inc(n),
      })
    : undefined;
const consumerReady = {
  get ready() {
    return consumer?.ready ?? false;
  },
};

const verifier = startServiceVerifier(config.auth, logger, 'read and set stock');

const server = serve(
  {
    fetch: createInventoryApp({
      db,
      logger,
      registry,
      consumer: consumerReady,
      ...(verifier ? { verifier } : {}),
      ...(config.metricsToken !== undefined ? { metricsToken: config.metricsToken } : {}),
    }).fetch,
    port: config.port,
    hostname: config.host,
  },
  (info) =>
    logger.info(
      {
        port: info.port,
        consuming: config.consumer.filterSubject,
        durable: config.consumer.name,
        nats: redactUrl(config.nats.url),
        events: `${config.eventsStream}.>`,
      },
      'inventory listening',
    ),
) as Server;
server.on('error', (err) => {
  logger.fatal({ err }, 'inventory server failed');
  stopping.abort('server error');
});
const stopping = new AbortController();
let nc: NatsConnection | undefined;
void shutDownOnAbort(stopping.signal, {
  logger,
  message: 'shutting down: finishing the event in flight',
  timeoutMs: config.shutdownTimeoutMs,
  async stop() {
    // The event in flight commits and is acked before the connection goes; then HTTP, then the pool.
    await Promise.all([consumer?.stop(), retention?.stop()]);
    await nc?.drain().catch(() => {});
    await new Promise<void>((resolve) => server.close(() => resolve()));
    server.closeAllConnections();
    await db.destroy();
    if (stopping.signal.reason === 'server error') process.exitCode = 1;
    // Stopped while the first NATS connection was still being tried: that attempt would hold the
    // process open for ever.
    if (nc === undefined) setImmediate(() => process.exit());
  },
});
stopOnSignals(stopping, logger);

// The connection keeps reconnecting for ever, the first one included.
nc = await connect({
  ...natsConnectionOptions({ ...config.nats, name: `${config.serviceName}-consumer` }),
  waitOnFirstConnect: true,
});
consumer = createConsumer({
  db,
  nats: nc,
  logger,
  settings: config.consumer,
  handler: createInventoryHandler({ eventsStream: config.eventsStream }),
  metrics,
});
if (!stopping.signal.aborted) consumer.start();

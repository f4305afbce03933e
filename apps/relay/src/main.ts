import { randomBytes } from 'node:crypto';
import type { Server } from 'node:http';
import { hostname } from 'node:os';
import { serve } from '@hono/node-server';
import { loadRelayConfig, loadTracingConfig, redactUrl } from '@orders/config';
import { createDb } from '@orders/db';
import { loadConfigOrExit, shutDownOnAbort, sleep, stopOnSignals } from '@orders/lifecycle';
import { createLogger } from '@orders/logger';
import { startTracing } from '@orders/telemetry';
import { createOpsApp } from './http.js';
import { OutboxListener } from './listener.js';
import { createRelayMetrics } from './metrics.js';
import { NatsLink } from './nats/link.js';
import { createRelay } from './relay.js';
import { startRetention } from './retention.js';

// The relay process (a sidecar): the only place that reads the environment, listens and handles signals.

const { config, tracingConfig } = loadConfigOrExit(() => ({
  config: loadRelayConfig(),
  tracingConfig: loadTracingConfig(),
}));

// Unique per process, even for a restarted container whose hostname and pid (1) stay the same: a
// dead relay's leases must not look like the new one's.
const relayId = `${hostname()}-${process.pid}-${randomBytes(3).toString('hex')}`;
const logger = createLogger({ name: `${config.serviceName}-relay`, level: config.logLevel }).child({
  relay_id: relayId,
});
// Trace export when an OTLP endpoint is set (the OTEL_* variables); nothing is loaded otherwise.
const tracing = await startTracing(tracingConfig, {
  serviceName: `${config.serviceName}-relay`,
  ignorePaths: ['/health', '/ready', '/metrics'],
  onStarted: (info) => logger.info({ service_name: info.serviceName }, 'trace export on'),
});
// JIT off: the relay's statements are short and run thousands of times. The backlog query's estimate
// crossed jit_above_cost on a 50,000-row backlog and JIT compilation took 1.3 of its 1.4 s (37 ms without).
const db = createDb(config.database, {
  logger,
  applicationName: `${config.serviceName}-relay`,
  sessionSettings: { jit: 'off' },
});
const metrics = createRelayMetrics(db);
const nats = new NatsLink({
  ...config.nats,
  duplicateWindowMs: config.duplicateWindowMs,
  publishTimeoutMs: config.publishTimeoutMs,
  backoffMaxMs: config.backoffMaxMs,
  name: `${config.serviceName}-relay-${relayId}`,
  logger,
  onReadyChange: (ready) => metrics.natsConnected.set(ready ? 1 : 0),
});
const relay = createRelay({
  db,
  nats,
  metrics,
  logger,
  settings: { relayId, ...config },
  traced: tracing !== undefined,
});
// Resolved when the relay's session first holds its presence lock (see below).
const sessionOpened = Promise.withResolvers<void>();
const listener = new OutboxListener({
  url: config.database.url,
  connectTimeoutMs: config.database.connectTimeoutMs,
  backoffMaxMs: config.backoffMaxMs,
  logger,
  relayId,
  listen: config.listen,
  onNotify: () => relay.notify(),
  onListening: () => {
    sessionOpened.resolve();
    relay.notify();
  },
});

const server = serve(
  { fetch: createOpsApp({ db, nats, metrics }).fetch, port: config.port, hostname: config.host },
  (info) =>
    logger.info(
      {
        port: info.port,
        stream: config.nats.stream,
        nats: redactUrl(config.nats.url),
        batchSize: config.batchSize,
        pollIntervalMs: config.pollIntervalMs,
        listen: config.listen,
        retentionMs: config.retentionMs,
      },
      'relay started',
    ),
) as Server;
server.on('error', (err) => {
  logger.fatal({ err }, 'relay ops server failed');
  stopping.abort('server error');
});

nats.start();
listener.start();
const retention =
  config.retentionMs > 0
    ? startRetention({
        db,
        logger,
        retentionMs: config.retentionMs,
        intervalMs: config.pruneIntervalMs,
        onPruned: (n) => metrics.pruned.inc(n),
      })
    : undefined;

const stopping = new AbortController();
void shutDownOnAbort(stopping.signal, {
  logger,
  message: 'shutting down: finishing the batch in flight',
  timeoutMs: config.shutdownTimeoutMs,
  async stop() {
    await Promise.all([relay.stop(), retention?.stop()]);
    await Promise.all([listener.stop(), nats.stop(), new Promise<void>((r) => server.close(() => r()))]);
    server.closeAllConnections();
    await db.destroy();
    // The last publishes' spans go out before the process ends.
    await tracing
      ?.shutdown()
      .catch((err: unknown) => logger.warn({ err }, 'trace export: final flush failed'));
    if (stopping.signal.reason === 'server error') process.exitCode = 1;
  },
});
// Claim only once the session holds the presence lock, so that peers never see this relay's first
// leases as orphaned; but never wait on it for long (a database that is down delays the first claim
// anyway, and delivery must not depend on the presence path).
void Promise.race([sessionOpened.promise, sleep(5000, stopping.signal)]).then(() => {
  if (!stopping.signal.aborted) relay.start();
});

stopOnSignals(stopping, logger);

import type { Server } from 'node:http';
import { serve } from '@hono/node-server';
import { startServiceVerifier } from '@orders/auth';
import { loadApiConfig, loadTracingConfig } from '@orders/config';
import { createDb, createOutboxNotifier } from '@orders/db';
import { loadConfigOrExit, shutDownOnAbort, stopOnSignals } from '@orders/lifecycle';
import { createLogger } from '@orders/logger';
import { startTracing } from '@orders/telemetry';
import { createApp } from './app.js';
import { startIdempotencyPruner } from './idempotency-pruner.js';

// The API process: the only place that reads the environment, listens and handles signals.

const { config, tracingConfig } = loadConfigOrExit(() => ({
  config: loadApiConfig(),
  tracingConfig: loadTracingConfig(),
}));

const logger = createLogger({ name: config.serviceName, level: config.logLevel });
// Trace export when an OTLP endpoint is set (the OTEL_* variables); nothing is loaded otherwise.
const tracing = await startTracing(tracingConfig, {
  serviceName: `${config.serviceName}-api`,
  ignorePaths: ['/health', '/metrics'],
  onStarted: (info) => logger.info({ service_name: info.serviceName }, 'trace export on'),
});
const db = createDb(config.database, {
  logger,
  applicationName: `${config.serviceName}-api`,
  // Unless asked for the in-transaction NOTIFY, the trigger stays quiet for our sessions.
  ...(config.outboxNotify === 'in-transaction' ? {} : { sessionSettings: { 'outbox.notify': 'off' } }),
});
const notifier =
  config.outboxNotify === 'after-commit'
    ? createOutboxNotifier(db, (err) =>
        logger.debug({ err }, 'outbox wake-up hint failed; the relay poll covers it'),
      )
    : undefined;
const verifier = startServiceVerifier(config.auth, logger, 'read and change orders');
const { app } = createApp({
  db,
  logger,
  config,
  ...(notifier ? { notifier } : {}),
  ...(verifier ? { verifier } : {}),
  ...(config.metricsToken !== undefined ? { metricsToken: config.metricsToken } : {}),
});

const pruner = startIdempotencyPruner({ db, logger });

const server = serve({ fetch: app.fetch, port: config.port, hostname: config.host }, (info) => {
  logger.info(
    { port: info.port, host: config.host, stream: config.stream, auth: config.auth ? 'bearer' : 'off' },
    'api listening',
  );
}) as Server;
server.on('error', (err) => {
  logger.fatal({ err }, 'api server failed');
  process.exitCode = 1;
  void db.destroy();
});

// After the grace period the remaining connections are closed; what is left (the pool, the last
// spans) gets this long before the process exits with code 1.
const AFTER_GRACE_MS = 10_000;

const stopping = new AbortController();
void shutDownOnAbort(stopping.signal, {
  logger,
  message: 'shutting down: no new connections, finishing requests in flight',
  timeoutMs: config.shutdownTimeoutMs + AFTER_GRACE_MS,
  async stop() {
    // Requests that outlive the grace period have their connections closed.
    const grace = setTimeout(() => {
      logger.warn('grace period over: closing remaining connections');
      server.closeAllConnections();
    }, config.shutdownTimeoutMs);
    grace.unref();
    const closed = new Promise<void>((resolve) => server.close(() => resolve()));
    // close() only drops connections idle at that moment; a keep-alive connection whose request
    // finishes later would hold shutdown open until the client's idle timeout.
    const reaper = setInterval(() => server.closeIdleConnections(), 50);
    await closed;
    clearInterval(reaper);
    clearTimeout(grace);
    await pruner.stop();
    // The last commits' wake-up hint goes out before the pool closes, or they would wait for the relay's poll.
    await notifier?.settled();
    await db.destroy();
    // The spans still batched go out before the process ends.
    await tracing
      ?.shutdown()
      .catch((err: unknown) => logger.warn({ err }, 'trace export: final flush failed'));
  },
});
stopOnSignals(stopping, logger);

import type { Server } from 'node:http';
import { serve } from '@hono/node-server';
import { createJwtVerifier } from '@orders/auth';
import { ConfigError, loadApiConfig, loadTracingConfig } from '@orders/config';
import { createDb, createOutboxNotifier, pruneIdempotencyKeys, safeError } from '@orders/db';
import { createLogger } from '@orders/logger';
import { startTracing } from '@orders/telemetry';
import { createApp } from './app.js';

// The API process: the only place that reads the environment, listens and handles signals.

let config: ReturnType<typeof loadApiConfig>;
let tracingConfig: ReturnType<typeof loadTracingConfig>;
try {
  config = loadApiConfig();
  tracingConfig = loadTracingConfig();
} catch (err) {
  if (!(err instanceof ConfigError)) throw err;
  console.error(err.message);
  process.exit(2);
}

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
const authLog = logger.child({ component: 'auth' });
const verifier = config.auth
  ? createJwtVerifier({
      jwksUrl: config.auth.jwksUrl,
      issuer: config.auth.issuer,
      audience: config.auth.audience,
      clockToleranceSeconds: config.auth.clockToleranceSeconds,
      jwks: {
        // A failed fetch keeps the keys fetched before; it is retried at most every 30 s, so this is rare.
        onRefresh: (r) =>
          r.ok
            ? authLog.info({ keys: r.keys, reason: r.reason }, 'issuer keys fetched')
            : authLog.warn(
                { err: r.error, reason: r.reason, jwks_url: config.auth?.jwksUrl },
                'issuer keys could not be fetched; cached keys stay in use',
              ),
      },
    })
  : undefined;
if (verifier) void verifier.warm();
else
  authLog.warn(
    'authentication is off (AUTH_JWKS_URL, AUTH_ISSUER, AUTH_AUDIENCE unset): anyone who reaches the port may read and change orders',
  );
const { app } = createApp({
  db,
  logger,
  config,
  ...(notifier ? { notifier } : {}),
  ...(verifier ? { verifier } : {}),
  ...(config.metricsToken !== undefined ? { metricsToken: config.metricsToken } : {}),
});

// Expired Idempotency-Keys go in small batches every 10 minutes (jittered, so several API processes spread out).
const PRUNE_EVERY_MS = 10 * 60_000;
async function pruneKeys(): Promise<void> {
  try {
    let deleted = 0;
    for (let n = 5000; n === 5000; deleted += n) n = await pruneIdempotencyKeys(db, 5000);
    if (deleted > 0) logger.info({ deleted }, 'pruned expired idempotency keys');
  } catch (err) {
    logger.warn({ err: safeError(err) }, 'idempotency key prune failed; next run retries');
  }
}
const pruner = setInterval(() => void pruneKeys(), PRUNE_EVERY_MS * (0.9 + Math.random() * 0.2));
pruner.unref();
setTimeout(() => void pruneKeys(), 30_000).unref();

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

async function shutdown(): Promise<void> {
  logger.info(
    { signal: stopping.signal.reason },
    'shutting down: no new connections, finishing requests in flight',
  );
  // A second signal, or requests that outlive the grace period, end the process anyway.
  const force = setTimeout(() => {
    logger.warn('grace period over: closing remaining connections');
    server.closeAllConnections();
  }, config.shutdownTimeoutMs);
  force.unref();
  const closed = new Promise<void>((resolve) => server.close(() => resolve()));
  // close() only drops connections idle at that moment; a keep-alive connection whose request
  // finishes later would hold shutdown open until the client's idle timeout.
  const reaper = setInterval(() => server.closeIdleConnections(), 50);
  await closed;
  clearInterval(reaper);
  clearInterval(pruner);
  // The last commits' wake-up hint goes out before the pool closes, or they would wait for the relay's poll.
  await notifier?.settled();
  await db.destroy();
  // The spans still batched go out before the process ends.
  await tracing?.shutdown().catch((err: unknown) => logger.warn({ err }, 'trace export: final flush failed'));
  clearTimeout(force);
  logger.info('stopped');
}

const stopping = new AbortController();
stopping.signal.addEventListener('abort', () => {
  // An EventTarget ignores what a listener returns: a rejection here would be unhandled and end the
  // process with a bare stack trace on stderr. Whatever failed may also hold the process open (the
  // pool, the server), so log it and exit now.
  shutdown().catch((err: unknown) => {
    logger.fatal({ err }, 'shutdown failed');
    process.exit(1);
  });
});
for (const signal of ['SIGTERM', 'SIGINT'] as const) {
  process.on(signal, () => {
    if (stopping.signal.aborted) {
      logger.warn({ signal }, 'second signal: exiting now');
      process.exit(1);
    }
    stopping.abort(signal);
  });
}

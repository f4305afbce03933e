import { createRequire } from 'node:module';
import { HttpInstrumentation } from '@opentelemetry/instrumentation-http';
import { PgInstrumentation } from '@opentelemetry/instrumentation-pg';
import { NodeSDK } from '@opentelemetry/sdk-node';
import type { TracingConfig } from '@orders/config';
import type { Tracing, TracingOptions } from './index.js';

// Loaded only when trace export is on (see index.ts).

const require = createRequire(import.meta.url);

/** Starts the SDK: exporter, sampler, propagators and resource from the OTEL_* variables. */
export function startSdk(config: TracingConfig, options: TracingOptions): Tracing {
  const ignored = new Set(options.ignorePaths ?? []);
  const sdk = new NodeSDK({
    ...(config.serviceNameFromEnv ? {} : { serviceName: options.serviceName }),
    instrumentations: [
      new HttpInstrumentation({
        ignoreIncomingRequestHook: (req) => ignored.has((req.url ?? '').split('?')[0] ?? ''),
      }),
      // Only queries inside a traced operation: the relay's polls, the API's pruner and the LISTEN
      // session would otherwise each start a trace of their own, several a second. No span per pool
      // checkout either: two of the 3.4 spans an order made, each about as costly to record and
      // export as a query's, for a checkout of an idle client that takes microseconds (a wait for
      // a free client still shows, as the gap before the query span).
      new PgInstrumentation({ requireParentSpan: true, ignoreConnectSpans: true }),
    ],
    // Metrics are Prometheus' (/metrics) and logs pino's: the SDK exports them too only when asked
    // by name (OTEL_METRICS_EXPORTER, OTEL_LOGS_EXPORTER), not by default as it otherwise would.
    ...(config.metricsExport ? {} : { metricReaders: [] }),
    ...(config.logsExport ? {} : { logRecordProcessors: [] }),
  });
  sdk.start();
  patchLoaded();
  options.onStarted?.({ serviceName: options.serviceName });
  return { shutdown: () => sdk.shutdown() };
}

/**
 * The instrumentations patch a module when it is required after they are enabled. The process's
 * entrypoint imported `pg` and `node:http` statically, before it could read its configuration, so
 * they are required once more here: the hook sees each of them and patches the loaded module in
 * place (the prototypes the pool's clients and the HTTP server already use). `pg` resolves here to
 * the same package the database layer loaded (one version in the lockfile, checked by the tracing
 * test, which finds the database spans).
 */
function patchLoaded(): void {
  require('node:http');
  require('node:https');
  const pgPath = require.resolve('pg');
  require(pgPath);
  createRequire(pgPath)('pg-pool');
}

import type { TracingConfig } from '@orders/config';

// Trace export for the API and the relay, switched on by the standard OpenTelemetry variables.
//
// Off (no OTLP endpoint set), nothing of the SDK is imported: this module only holds types and the
// switch, and `./sdk.js` (which imports the SDK and the instrumentations) is loaded by a dynamic
// import behind it. The processes' own code only uses @opentelemetry/api, whose calls are no-ops
// while no SDK is registered.

/** A running SDK: `shutdown()` flushes the spans still batched and stops export. */
export interface Tracing {
  shutdown(): Promise<void>;
}

/** What the process tells the SDK besides the OTEL_* variables. */
export interface TracingOptions {
  /** service.name when OTEL_SERVICE_NAME / OTEL_RESOURCE_ATTRIBUTES set none (`orders-service-api`). */
  readonly serviceName: string;
  /** Incoming requests to these paths make no span (probes and scrapes would drown the traces). */
  readonly ignorePaths?: readonly string[];
  /** Told once, at start, what is exported (no secret: endpoints are logged without credentials). */
  readonly onStarted?: (info: { readonly serviceName: string }) => void;
}

/**
 * Starts the OpenTelemetry Node SDK when `config.enabled`, with the HTTP server and `pg` instrumented;
 * resolves to undefined (having imported nothing) otherwise.
 */
export async function startTracing(
  config: TracingConfig,
  options: TracingOptions,
): Promise<Tracing | undefined> {
  if (!config.enabled) return undefined;
  const { startSdk } = await import('./sdk.js');
  return startSdk(config, options);
}

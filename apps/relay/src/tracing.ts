import {
  ROOT_CONTEXT,
  type Span,
  type SpanContext,
  SpanKind,
  SpanStatusCode,
  type Tracer,
  trace,
} from '@opentelemetry/api';
import { parseTraceparent } from '@orders/events';

// The relay's publish of an event is recorded as a PRODUCER span in the trace that wrote the event: a
// child of the context stored on the outbox row (the API's request span, or the caller's traceparent),
// and linked to it as well, since it starts long after that span may have ended. It uses the
// OpenTelemetry API only: without an SDK registered the spans are no-ops, which is the default; the
// relay registers one when an OTLP endpoint is set (OTEL_EXPORTER_OTLP_ENDPOINT, see @orders/telemetry).

/** The span context a W3C traceparent names, or undefined when it is not a valid one. */
export function spanContextFrom(traceparent: string | undefined): SpanContext | undefined {
  const parsed = parseTraceparent(traceparent);
  if (!parsed) return undefined;
  return {
    traceId: parsed.traceId,
    spanId: parsed.spanId,
    traceFlags: parsed.sampled ? 1 : 0,
    isRemote: true,
  };
}

export const relayTracer = (): Tracer => trace.getTracer('orders-relay');

/**
 * Starts the span of one publish, linked to the event's own trace when its headers carry one.
 * The caller ends it with {@link endPublishSpan}.
 */
export function startPublishSpan(
  tracer: Tracer,
  message: {
    readonly id: string;
    readonly subject: string;
    readonly headers: Readonly<Record<string, string>>;
  },
): Span {
  const origin = spanContextFrom(message.headers['traceparent']);
  return tracer.startSpan(
    `publish ${message.subject}`,
    {
      kind: SpanKind.PRODUCER,
      ...(origin ? { links: [{ context: origin }] } : {}),
      attributes: {
        'messaging.system': 'nats',
        'messaging.operation.type': 'publish',
        'messaging.destination.name': message.subject,
        'messaging.message.id': message.id,
      },
    },
    origin ? trace.setSpanContext(ROOT_CONTEXT, origin) : ROOT_CONTEXT,
  );
}

/**
 * The headers to send: the stored ones, with `traceparent` naming the publish span when it records
 * (so a consumer's spans are its children, as messaging conventions ask); unchanged otherwise, which
 * is every message while no SDK is registered.
 */
export function publishHeaders(
  span: Span,
  headers: Readonly<Record<string, string>>,
): Readonly<Record<string, string>> {
  if (!span.isRecording()) return headers;
  const { traceId, spanId, traceFlags } = span.spanContext();
  const flags = (traceFlags & 0xff).toString(16).padStart(2, '0');
  return { ...headers, traceparent: `00-${traceId}-${spanId}-${flags}` };
}

export function endPublishSpan(span: Span, outcome: { duplicate?: boolean; error?: unknown }): void {
  if (outcome.error !== undefined) {
    span.setStatus({
      code: SpanStatusCode.ERROR,
      message: outcome.error instanceof Error ? outcome.error.message : String(outcome.error),
    });
  } else if (outcome.duplicate !== undefined) {
    span.setAttribute('orders.outbox.duplicate', outcome.duplicate);
  }
  span.end();
}

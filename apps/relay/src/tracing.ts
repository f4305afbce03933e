import {
  type Span,
  type SpanContext,
  SpanKind,
  SpanStatusCode,
  type Tracer,
  trace,
} from '@opentelemetry/api';
import { parseTraceparent } from '@orders/events';

// The relay's publish of an event is recorded as a PRODUCER span linked to the trace that wrote the
// event (the request's W3C traceparent, stored on the outbox row and sent as a NATS header). It uses
// the OpenTelemetry API only: without an SDK registered in the process the spans are no-ops, which
// is the default. Register one (e.g. `node --import <your OTel setup> dist/main.js`) to export them.

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
  return tracer.startSpan(`publish ${message.subject}`, {
    kind: SpanKind.PRODUCER,
    ...(origin ? { links: [{ context: origin }] } : {}),
    attributes: {
      'messaging.system': 'nats',
      'messaging.operation.type': 'publish',
      'messaging.destination.name': message.subject,
      'messaging.message.id': message.id,
    },
  });
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

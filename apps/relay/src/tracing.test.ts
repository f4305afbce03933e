import { SpanKind, trace } from '@opentelemetry/api';
import {
  BasicTracerProvider,
  InMemorySpanExporter,
  SimpleSpanProcessor,
} from '@opentelemetry/sdk-trace-base';
import { describe, expect, it } from 'vitest';
import { endPublishSpan, publishHeaders, spanContextFrom, startPublishSpan } from './tracing.js';

const TRACEPARENT = '00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01';

describe('publish spans', () => {
  it('link to the trace that wrote the event, as a producer span with messaging attributes', () => {
    const exporter = new InMemorySpanExporter();
    const provider = new BasicTracerProvider({ spanProcessors: [new SimpleSpanProcessor(exporter)] });
    const tracer = provider.getTracer('test');
    const span = startPublishSpan(tracer, {
      id: 'e1',
      subject: 'orders.order_created',
      headers: { traceparent: TRACEPARENT },
    });
    endPublishSpan(span, { duplicate: false });
    const [finished] = exporter.getFinishedSpans();
    expect(finished?.name).toBe('publish orders.order_created');
    expect(finished?.kind).toBe(SpanKind.PRODUCER);
    expect(finished?.links).toHaveLength(1);
    expect(finished?.links[0]?.context).toMatchObject({
      traceId: '4bf92f3577b34da6a3ce929d0e0e4736',
      spanId: '00f067aa0ba902b7',
      traceFlags: 1,
    });
    expect(finished?.attributes).toMatchObject({
      'messaging.system': 'nats',
      'messaging.destination.name': 'orders.order_created',
      'messaging.message.id': 'e1',
      'orders.outbox.duplicate': false,
    });
  });

  it('records a failed publish as an error, and starts unlinked when the row has no valid traceparent', () => {
    const exporter = new InMemorySpanExporter();
    const tracer = new BasicTracerProvider({ spanProcessors: [new SimpleSpanProcessor(exporter)] }).getTracer(
      't',
    );
    endPublishSpan(
      startPublishSpan(tracer, { id: 'e2', subject: 's', headers: { traceparent: 'garbage' } }),
      {
        error: new Error('timeout'),
      },
    );
    const [finished] = exporter.getFinishedSpans();
    expect(finished?.links).toEqual([]);
    expect(finished?.status).toMatchObject({ code: 2, message: 'timeout' });
  });

  it('parses only valid W3C traceparents', () => {
    expect(spanContextFrom(TRACEPARENT)?.traceId).toBe('4bf92f3577b34da6a3ce929d0e0e4736');
    for (const bad of [
      undefined,
      '',
      'ff-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01',
      '00-00000000000000000000000000000000-00f067aa0ba902b7-01',
      '00-4bf92f3577b34da6a3ce929d0e0e4736-0000000000000000-01',
      '00-4BF92F3577B34DA6A3CE929D0E0E4736-00f067aa0ba902b7-01x',
    ]) {
      expect(spanContextFrom(bad)).toBeUndefined();
    }
  });

  it("is a child of the row's context, and the message then names the publish span", () => {
    const exporter = new InMemorySpanExporter();
    const tracer = new BasicTracerProvider({ spanProcessors: [new SimpleSpanProcessor(exporter)] }).getTracer(
      't',
    );
    const stored = { traceparent: TRACEPARENT, tracestate: 'congo=t61rcWkgMzE' };
    const span = startPublishSpan(tracer, { id: 'e3', subject: 's', headers: stored });
    const sent = publishHeaders(span, stored);
    endPublishSpan(span, { duplicate: false });
    const [finished] = exporter.getFinishedSpans();
    expect(finished?.spanContext().traceId).toBe('4bf92f3577b34da6a3ce929d0e0e4736');
    expect(finished?.parentSpanContext?.spanId).toBe('00f067aa0ba902b7');
    expect(sent).toEqual({
      traceparent: `00-4bf92f3577b34da6a3ce929d0e0e4736-${finished?.spanContext().spanId}-01`,
      tracestate: 'congo=t61rcWkgMzE',
    });
  });

  it('without an SDK the span records nothing and the stored headers go out unchanged', () => {
    // The global API with no provider registered: what the relay runs with when tracing is off.
    const stored = { traceparent: TRACEPARENT };
    const span = startPublishSpan(trace.getTracer('off'), { id: 'e4', subject: 's', headers: stored });
    expect(span.isRecording()).toBe(false);
    expect(publishHeaders(span, stored)).toBe(stored);
  });
});

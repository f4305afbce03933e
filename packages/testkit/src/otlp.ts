import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { setTimeout as sleep } from 'node:timers/promises';
import { decodeTraceRequest } from './otlp-protobuf.js';
import { type PortReservation, startOnReservedPort } from './ports.js';

// A real OTLP/HTTP receiver for tests: the OpenTelemetry exporter of a process under test sends its
// spans here, over HTTP, as it would to a collector. It takes both encodings the HTTP exporter
// speaks: protobuf (`http/protobuf`, the default; decoded by ./otlp-protobuf.ts) and JSON
// (`http/json`, where ids are hex strings as the OTLP spec says). Anything else is refused with 415
// and remembered as an error, so that a test fails naming it instead of waiting for spans.

/** One span as received, with the service that sent it. */
export interface ReceivedSpan {
  readonly serviceName: string;
  readonly traceId: string;
  readonly spanId: string;
  /** Empty for a root span. */
  readonly parentSpanId: string;
  readonly name: string;
  /** OTLP's SpanKind: 1 internal, 2 server, 3 client, 4 producer, 5 consumer. */
  readonly kind: number;
  readonly attributes: Readonly<Record<string, unknown>>;
  readonly links: readonly { readonly traceId: string; readonly spanId: string }[];
  readonly scope: string;
}

export interface OtlpReceiver {
  /** Base URL, for OTEL_EXPORTER_OTLP_ENDPOINT (the exporter appends /v1/traces). */
  readonly url: string;
  /** Every span received so far, in arrival order. */
  readonly spans: readonly ReceivedSpan[];
  /** Requests it could not decode (wrong content type, bad JSON), one line each. */
  readonly errors: readonly string[];
  /** Resolves with the spans once `done(spans)` holds; rejects after `timeoutMs`, listing what came. */
  waitFor(
    what: string,
    done: (spans: readonly ReceivedSpan[]) => boolean,
    timeoutMs?: number,
  ): Promise<readonly ReceivedSpan[]>;
  close(): Promise<void>;
}

/** Starts a receiver on a reserved loopback port. */
export function startOtlpReceiver(): Promise<OtlpReceiver> {
  return startOnReservedPort((reservation) => listen(reservation));
}

async function listen(reservation: PortReservation): Promise<OtlpReceiver> {
  const spans: ReceivedSpan[] = [];
  const errors: string[] = [];
  const server: Server = createServer((req, res) => void receive(req, res, spans, errors));
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(reservation.port, '127.0.0.1', () => resolve());
  });
  return {
    url: `http://127.0.0.1:${reservation.port}`,
    spans,
    errors,
    async waitFor(what, done, timeoutMs = 15_000) {
      const deadline = Date.now() + timeoutMs;
      while (!done(spans)) {
        if (errors.length > 0) throw new Error(`OTLP receiver: ${errors.join('; ')}`);
        if (Date.now() > deadline) {
          const seen = spans.map((s) => `${s.serviceName}: ${s.name} (${s.traceId})`).join('\n  ');
          throw new Error(
            `OTLP receiver: no ${what} within ${timeoutMs} ms; received:\n  ${seen || '(nothing)'}`,
          );
        }
        await sleep(50);
      }
      return spans;
    },
    async close() {
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
      reservation.release();
    },
  };
}

async function receive(
  req: IncomingMessage,
  res: ServerResponse,
  spans: ReceivedSpan[],
  errors: string[],
): Promise<void> {
  const chunks: Buffer[] = [];
  for await (const chunk of req) chunks.push(chunk as Buffer);
  const type = req.headers['content-type'] ?? '';
  // Metrics and logs are not what these tests look at, but an exporter sending them must not fail.
  if (req.method !== 'POST' || !['/v1/traces', '/v1/metrics', '/v1/logs'].includes(req.url ?? '')) {
    res.writeHead(404).end();
    return;
  }
  const json = type.startsWith('application/json');
  if (!json && !type.startsWith('application/x-protobuf')) {
    errors.push(
      `${req.url}: content-type ${type || 'none'}; expected application/x-protobuf or application/json`,
    );
    res.writeHead(415).end();
    return;
  }
  try {
    const raw = Buffer.concat(chunks);
    if (req.url === '/v1/traces') {
      const body = json ? (JSON.parse(raw.toString('utf8')) as ExportRequest) : decodeTraceRequest(raw);
      spans.push(...flatten(body));
    }
    // An empty ExportTraceServiceResponse: no partial success to report.
    if (json) res.writeHead(200, { 'content-type': 'application/json' }).end('{}');
    else res.writeHead(200, { 'content-type': 'application/x-protobuf' }).end();
  } catch (err) {
    errors.push(`${req.url}: ${(err as Error).message}`);
    res.writeHead(400).end();
  }
}

// The parts of ExportTraceServiceRequest (OTLP/JSON) read here.
interface AnyValue {
  stringValue?: string;
  boolValue?: boolean;
  intValue?: string | number;
  doubleValue?: number;
}
interface KeyValue {
  key: string;
  value?: AnyValue;
}
interface ExportRequest {
  resourceSpans?: {
    resource?: { attributes?: KeyValue[] };
    scopeSpans?: {
      scope?: { name?: string };
      spans?: {
        traceId: string;
        spanId: string;
        parentSpanId?: string;
        name: string;
        kind?: number;
        attributes?: KeyValue[];
        links?: { traceId: string; spanId: string }[];
      }[];
    }[];
  }[];
}

function attributes(list: readonly KeyValue[] | undefined): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const { key, value } of list ?? []) {
    out[key] =
      value?.stringValue ??
      value?.boolValue ??
      (value?.intValue !== undefined ? Number(value.intValue) : value?.doubleValue);
  }
  return out;
}

function flatten(body: ExportRequest): ReceivedSpan[] {
  const out: ReceivedSpan[] = [];
  for (const rs of body.resourceSpans ?? []) {
    const serviceName = String(attributes(rs.resource?.attributes)['service.name'] ?? '');
    for (const ss of rs.scopeSpans ?? []) {
      for (const s of ss.spans ?? []) {
        out.push({
          serviceName,
          traceId: s.traceId,
          spanId: s.spanId,
          parentSpanId: s.parentSpanId ?? '',
          name: s.name,
          kind: s.kind ?? 0,
          attributes: attributes(s.attributes),
          links: (s.links ?? []).map((l) => ({ traceId: l.traceId, spanId: l.spanId })),
          scope: ss.scope?.name ?? '',
        });
      }
    }
  }
  return out;
}

import { randomBytes } from 'node:crypto';

/** The W3C trace context an order's events carry to the stream (as NATS headers). */
export interface TraceContext {
  /** Stored on the outbox row and sent as the `traceparent` header. */
  readonly traceparent: string;
  readonly tracestate?: string;
  readonly traceId: string;
  /** True when the request brought no valid traceparent and the API started a trace. */
  readonly started: boolean;
}

// version-traceid-parentid-flags (W3C Trace Context, level 1); later versions may append fields.
const TRACEPARENT = /^([0-9a-f]{2})-([0-9a-f]{32})-([0-9a-f]{16})-([0-9a-f]{2})(-[^\s]*)?$/;
const ZERO_TRACE = '0'.repeat(32);
const ZERO_SPAN = '0'.repeat(16);
// tracestate: at most 32 list members, 512 characters is what the spec asks to propagate at least.
const TRACESTATE_MAX = 512;

/**
 * The request's trace context, kept exactly as received when its `traceparent` is valid (the API is
 * not a traced participant: it exports no spans, so it passes the caller's context through unchanged);
 * otherwise a new trace the API starts, not sampled (nothing records it yet), so the event can still be
 * correlated. An invalid header is ignored, as the spec says, never an error.
 */
export function traceContextFrom(
  traceparent: string | undefined,
  tracestate: string | undefined,
): TraceContext {
  const value = traceparent?.trim().toLowerCase();
  const m = value ? TRACEPARENT.exec(value) : null;
  if (
    value &&
    m &&
    m[1] !== 'ff' &&
    m[2] !== ZERO_TRACE &&
    m[3] !== ZERO_SPAN &&
    (m[1] !== '00' || m[5] === undefined)
  ) {
    const state = tracestate?.trim();
    return {
      traceparent: value,
      ...(state && state.length <= TRACESTATE_MAX ? { tracestate: state } : {}),
      traceId: m[2] ?? '',
      started: false,
    };
  }
  const traceId = randomBytes(16).toString('hex');
  return { traceparent: `00-${traceId}-${randomBytes(8).toString('hex')}-00`, traceId, started: true };
}

/** The NATS headers an event stores for its trace context. */
export function traceHeaders(trace: TraceContext): Record<string, string> {
  return trace.tracestate
    ? { traceparent: trace.traceparent, tracestate: trace.tracestate }
    : { traceparent: trace.traceparent };
}

/** The app's Hono environment: what middleware hands to handlers. */
export type AppEnv = { Variables: { trace: TraceContext } };

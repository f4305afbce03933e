import { randomFillSync } from 'node:crypto';
import { isSpanContextValid, type SpanContext } from '@opentelemetry/api';
import type { Principal } from '@orders/auth';
import { EventHeader, type EventHeaders, parseTraceparent } from '@orders/events';

/** The W3C trace context an order's events carry to the stream (as NATS headers). */
export interface TraceContext {
  /** Stored on the outbox row and sent as the `traceparent` header. */
  readonly traceparent: string;
  readonly tracestate?: string;
  readonly traceId: string;
  /** True when the request brought no valid traceparent and the API started a trace. */
  readonly started: boolean;
}

// tracestate: at most 32 list members, 512 characters is what the spec asks to propagate at least.
const TRACESTATE_MAX = 512;

/**
 * The request's trace context. With the OpenTelemetry SDK on, `active` is the request's server span
 * (a child of the caller's traceparent, or a new trace's root), and the events carry it, so that the
 * relay's publish joins the same trace under the API's span. Without the SDK the API is not a traced
 * participant (it records no spans), so it passes the caller's context through unchanged when its
 * `traceparent` is valid; otherwise it starts a new trace, not sampled (nothing records it), so the
 * event can still be correlated. An invalid header is ignored, as the spec says, never an error.
 */
export function traceContextFrom(
  traceparent: string | undefined,
  tracestate: string | undefined,
  active?: SpanContext,
): TraceContext {
  const value = traceparent?.trim().toLowerCase();
  const parsed = parseTraceparent(value);
  if (active && isSpanContextValid(active)) {
    const state = active.traceState?.serialize();
    return {
      traceparent: `00-${active.traceId}-${active.spanId}-${(active.traceFlags & 0xff).toString(16).padStart(2, '0')}`,
      ...(state ? { tracestate: state } : {}),
      traceId: active.traceId,
      started: !parsed,
    };
  }
  if (value && parsed) {
    const state = tracestate?.trim();
    return {
      traceparent: value,
      ...(state && state.length <= TRACESTATE_MAX ? { tracestate: state } : {}),
      traceId: parsed.traceId,
      started: false,
    };
  }
  // 16 bytes of trace id and 8 of span id, in one take from the pool.
  const ids = randomIds();
  const traceId = ids.slice(0, 32);
  return { traceparent: `00-${traceId}-${ids.slice(32)}-00`, traceId, started: true };
}

// Random bytes for started traces come from a pool refilled 170 traces at a time, as node's own
// randomUUID() does: crypto.randomBytes(24) per request cost one OpenSSL call with its fork check
// (a getpid syscall) each time, ~15 us per request under load in a --cpu-prof of POST /orders.
const ID_BYTES = 24;
const pool = Buffer.allocUnsafe(ID_BYTES * 170);
let taken = pool.length;

function randomIds(): string {
  if (taken + ID_BYTES > pool.length) {
    randomFillSync(pool);
    taken = 0;
  }
  const hex = pool.toString('hex', taken, taken + ID_BYTES);
  taken += ID_BYTES;
  return hex;
}

/** Where a change came from: the request's trace context and, with authentication on, its caller. */
export interface EventOrigin {
  readonly trace?: TraceContext | undefined;
  /** The verified token's `sub`. */
  readonly actor?: string | undefined;
}

/** The NATS headers an event stores for its origin; undefined when there is nothing to say. */
export function eventHeaders(origin: EventOrigin | undefined): EventHeaders | undefined {
  const trace = origin?.trace;
  if (!trace && origin?.actor === undefined) return undefined;
  return {
    ...(trace ? { [EventHeader.Traceparent]: trace.traceparent } : {}),
    ...(trace?.tracestate ? { [EventHeader.Tracestate]: trace.tracestate } : {}),
    ...(origin?.actor !== undefined ? { [EventHeader.Actor]: origin.actor } : {}),
  };
}

/**
 * The app's Hono environment: what middleware hands to handlers. `principal` is set by the auth
 * guard of a route once its token verified; never with authentication off.
 */
export type AppEnv = { Variables: { trace: TraceContext; principal: Principal } };

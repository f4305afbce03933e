import { z } from 'zod';

/** Event types the service emits. One name everywhere: outbox `event_type`, payload `event_type`, subject suffix. */
export const EventType = {
  OrderCreated: 'order_created',
  OrderStatusChanged: 'order_status_changed',
} as const;
export type EventType = (typeof EventType)[keyof typeof EventType];

/** Aggregate types that own outbox rows. */
export const AggregateType = {
  Order: 'order',
} as const;
export type AggregateType = (typeof AggregateType)[keyof typeof AggregateType];

/**
 * The subject an event is published on: `<stream>.<event_type>`, so the stream's `<stream>.>` filter
 * covers every event the service emits (`orders.order_created` with the default stream).
 */
export function subjectFor(stream: string, eventType: EventType | InventoryEventType): string {
  return `${stream}.${eventType}`;
}

/**
 * A UUID in its text form, either case (PostgreSQL's `uuid` input accepts both and prints lower case).
 * For hand-checked input (cursors, CLI arguments) that must be refused before it reaches a `::uuid` cast.
 */
export const UUID_PATTERN = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

const money = z.number().nonnegative();
const isoTimestamp = z.iso.datetime({ offset: true });

/** One line of an order as it appears in events and in API responses. */
export const orderItemPayloadSchema = z.object({
  id: z.uuid(),
  sku: z.string().min(1).max(64),
  qty: z.number().int().positive(),
  price: money,
  created_at: isoTimestamp,
});

/** The `order_created` payload of the contract, field for field. Consumers may parse with this. */
export const orderCreatedPayloadSchema = z.object({
  event_type: z.literal(EventType.OrderCreated),
  order_id: z.uuid(),
  customer_id: z.uuid(),
  status: z.literal('draft'),
  total_amount: money,
  items: z.array(orderItemPayloadSchema).min(1),
  created_at: isoTimestamp,
});
export type OrderCreatedPayload = z.infer<typeof orderCreatedPayloadSchema>;

/** The fields of a freshly created order that the event carries. */
export interface CreatedOrderFacts {
  readonly id: string;
  readonly customer_id: string;
  readonly total_amount: number;
  readonly items: readonly z.infer<typeof orderItemPayloadSchema>[];
  readonly created_at: string;
}

/** Builds the contract's `order_created` payload from an order as the API returns it. */
export function orderCreatedPayload(order: CreatedOrderFacts): OrderCreatedPayload {
  return {
    event_type: EventType.OrderCreated,
    order_id: order.id,
    customer_id: order.customer_id,
    status: 'draft',
    total_amount: order.total_amount,
    items: order.items.map((i) => ({
      id: i.id,
      sku: i.sku,
      qty: i.qty,
      price: i.price,
      created_at: i.created_at,
    })),
    created_at: order.created_at,
  };
}

/** Order statuses, in lifecycle order. `draft` on create. */
export const ORDER_STATUSES = ['draft', 'placed', 'cancelled', 'shipped', 'completed'] as const;
export type OrderStatusName = (typeof ORDER_STATUSES)[number];

/**
 * The order lifecycle: the statuses each status may move to. `cancelled` and `completed` are final.
 * Setting the current status again is not a transition (a no-op, no event).
 */
export const ORDER_TRANSITIONS: Readonly<Record<OrderStatusName, readonly OrderStatusName[]>> = {
  draft: ['placed', 'cancelled'],
  placed: ['shipped', 'cancelled'],
  shipped: ['completed'],
  cancelled: [],
  completed: [],
};

export function canTransition(from: OrderStatusName, to: OrderStatusName): boolean {
  return ORDER_TRANSITIONS[from].includes(to);
}

/** The `order_status_changed` payload: one per real status change, in commit order per order. */
export const orderStatusChangedPayloadSchema = z.object({
  event_type: z.literal(EventType.OrderStatusChanged),
  order_id: z.uuid(),
  from: z.enum(ORDER_STATUSES),
  to: z.enum(ORDER_STATUSES),
  changed_at: isoTimestamp,
});
export type OrderStatusChangedPayload = z.infer<typeof orderStatusChangedPayloadSchema>;

export function orderStatusChangedPayload(change: {
  readonly order_id: string;
  readonly from: OrderStatusName;
  readonly to: OrderStatusName;
  readonly changed_at: string;
}): OrderStatusChangedPayload {
  return { event_type: EventType.OrderStatusChanged, ...change };
}

/**
 * The NATS headers an event may carry besides `Nats-Msg-Id` (the outbox id, set by the relay).
 * `traceparent`/`tracestate`: the W3C trace context of the request that wrote the event. `actor`: the
 * `sub` of the verified bearer token of that request, absent when authentication is off; a subject
 * only (at most 255 characters, no control characters), never a token or any other claim.
 */
export const EventHeader = {
  Traceparent: 'traceparent',
  Tracestate: 'tracestate',
  Actor: 'actor',
} as const;
export type EventHeaderName = (typeof EventHeader)[keyof typeof EventHeader];
/** The headers stored on an outbox row and published with it. */
export type EventHeaders = Partial<Record<EventHeaderName, string>>;

/** The fields of a W3C Trace Context `traceparent` header (level 1). */
export interface Traceparent {
  readonly traceId: string;
  readonly spanId: string;
  readonly sampled: boolean;
}

// version-traceid-parentid-flags; later versions may append fields.
const TRACEPARENT = /^([0-9a-f]{2})-([0-9a-f]{32})-([0-9a-f]{16})-([0-9a-f]{2})(-\S*)?$/;

/**
 * Parses a `traceparent` as the W3C spec says to: version ff, an all-zero trace or parent id, or a
 * version 00 header with extra fields are invalid. Used by the API (to keep or start a trace) and
 * the relay (to link its publish span), so both agree on what is valid.
 */
export function parseTraceparent(value: string | undefined): Traceparent | undefined {
  const m = value === undefined ? null : TRACEPARENT.exec(value);
  if (!m) return undefined;
  const [, version, traceId = '', spanId = '', flags = '00', rest] = m;
  if (
    version === 'ff' ||
    /^0+$/.test(traceId) ||
    /^0+$/.test(spanId) ||
    (version === '00' && rest !== undefined)
  ) {
    return undefined;
  }
  return { traceId, spanId, sampled: (Number.parseInt(flags, 16) & 1) === 1 };
}

/**
 * Events of the inventory service (apps/inventory), written to its own outbox and published by a relay
 * pointed at its database to stream `inventory` (subjects `inventory.<event_type>`).
 */
export const InventoryEventType = {
  StockReserved: 'stock_reserved',
  ReservationFailed: 'reservation_failed',
  StockReleased: 'stock_released',
} as const;
export type InventoryEventType = (typeof InventoryEventType)[keyof typeof InventoryEventType];

/** The inventory's aggregate: its events are about one order's reservation, in that order's partition. */
export const InventoryAggregateType = { Reservation: 'reservation' } as const;

/** One line of a reservation event: what the order asked for of one sku. */
export const reservationItemSchema = z.object({
  sku: z.string().min(1).max(64),
  qty: z.number().int().positive(),
});

export const stockReservedPayloadSchema = z.object({
  event_type: z.literal(InventoryEventType.StockReserved),
  order_id: z.uuid(),
  items: z.array(reservationItemSchema).min(1),
  reserved_at: isoTimestamp,
});
export type StockReservedPayload = z.infer<typeof stockReservedPayloadSchema>;

/** Why a reservation was refused: a sku the inventory does not know, or not enough of one available. */
export const RESERVATION_FAILURE_REASONS = ['unknown_sku', 'insufficient_stock'] as const;

export const reservationFailedPayloadSchema = z.object({
  event_type: z.literal(InventoryEventType.ReservationFailed),
  order_id: z.uuid(),
  reason: z.enum(RESERVATION_FAILURE_REASONS),
  /** Every item of the order; those that failed carry `available` (0 for an unknown sku) and `reason`. */
  items: z
    .array(
      reservationItemSchema.extend({
        available: z.number().int().optional(),
        reason: z.enum(RESERVATION_FAILURE_REASONS).optional(),
      }),
    )
    .min(1),
  failed_at: isoTimestamp,
});
export type ReservationFailedPayload = z.infer<typeof reservationFailedPayloadSchema>;

export const stockReleasedPayloadSchema = z.object({
  event_type: z.literal(InventoryEventType.StockReleased),
  order_id: z.uuid(),
  items: z.array(reservationItemSchema).min(1),
  released_at: isoTimestamp,
});
export type StockReleasedPayload = z.infer<typeof stockReleasedPayloadSchema>;

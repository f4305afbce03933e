import { z } from 'zod';

/** Event types the service emits. One name everywhere: outbox `event_type`, payload `event_type`, subject suffix. */
export const EventType = {
  OrderCreated: 'order_created',
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
export function subjectFor(stream: string, eventType: EventType): string {
  return `${stream}.${eventType}`;
}

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

import { type EventHandler, PoisonMessageError } from '@orders/consumer';
import {
  EventType,
  InventoryAggregateType,
  InventoryEventType,
  orderCreatedPayloadSchema,
  orderStatusChangedPayloadSchema,
  type ReservationFailedPayload,
  type StockReleasedPayload,
  type StockReservedPayload,
  subjectFor,
} from '@orders/events';
import type { z } from 'zod';
import { releaseOrder, reserveOrder } from './reservations.js';
import type { InventoryDatabase } from './schema.js';

export interface InventoryHandlerOptions {
  /** The subject prefix of the inventory's own events (`inventory`). */
  readonly eventsStream: string;
  readonly now?: () => Date;
}

/**
 * The inventory's handler of order events: reserve on `order_created`, release on a change to
 * `cancelled`; every other event is recorded in the inbox and otherwise ignored. Each outcome is an
 * event in the inventory's outbox, in the same transaction.
 */
export function createInventoryHandler(options: InventoryHandlerOptions): EventHandler<InventoryDatabase> {
  const now = options.now ?? (() => new Date());
  return async (event, { trx, enqueue }) => {
    /** One of the inventory's events about an order's reservation, to its outbox. */
    const emit = (payload: StockReservedPayload | ReservationFailedPayload | StockReleasedPayload) =>
      enqueue({
        aggregateType: InventoryAggregateType.Reservation,
        aggregateId: payload.order_id,
        eventType: payload.event_type,
        subject: subjectFor(options.eventsStream, payload.event_type),
        payload,
      });
    const type = (event.payload as { event_type?: unknown } | null)?.event_type;
    if (type === EventType.OrderCreated) {
      const order = parse(orderCreatedPayloadSchema, event.payload);
      const result = await reserveOrder(trx, order.order_id, order.items);
      if (result.outcome === 'already_reserved') return;
      if (result.outcome === 'reserved') {
        await emit({
          event_type: InventoryEventType.StockReserved,
          order_id: order.order_id,
          items: [...result.items],
          reserved_at: now().toISOString(),
        });
        return;
      }
      await emit({
        event_type: InventoryEventType.ReservationFailed,
        order_id: order.order_id,
        reason: result.reason,
        items: [...result.items],
        failed_at: now().toISOString(),
      });
      return;
    }
    if (type === EventType.OrderStatusChanged) {
      const change = parse(orderStatusChangedPayloadSchema, event.payload);
      if (change.to !== 'cancelled') return;
      const released = await releaseOrder(trx, change.order_id);
      if (released.length === 0) return;
      await emit({
        event_type: InventoryEventType.StockReleased,
        order_id: change.order_id,
        items: released,
        released_at: now().toISOString(),
      });
    }
  };
}

/** A payload that does not match its event's schema will never be handled: a dead letter at once. */
function parse<S extends z.ZodType>(schema: S, payload: unknown): z.infer<S> {
  const result = schema.safeParse(payload);
  if (!result.success) {
    const detail = result.error.issues
      .map((i) => `${i.path.join('.') || '(payload)'}: ${i.message}`)
      .join('; ');
    throw new PoisonMessageError(`payload does not match its schema: ${detail}`);
  }
  return result.data;
}

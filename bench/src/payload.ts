import { randomUUID } from 'node:crypto';
import type { NewOrder, NewOutboxEvent } from '@orders/db';
import { orderCreatedPayload } from '@orders/events';

/** The seed README's two-item order: what every scenario sends. */
export function seedOrder(customerId: string = randomUUID()) {
  return {
    customer_id: customerId,
    items: [
      { sku: 'WIDGET-001', qty: 2, price: 19.99 },
      { sku: 'GADGET-002', qty: 1, price: 49.99 },
    ],
    metadata: { source: 'bench' },
  };
}

/**
 * An order and its order_created outbox event, built as the API builds them (total in integer cents),
 * for the one statement the API runs (`insertOrderWithEvent`): the database and bare-HTTP baselines.
 */
export function orderWithEvent(
  stream: string,
  input: {
    readonly customer_id: string;
    readonly items: readonly { readonly sku: string; readonly qty: number; readonly price: number }[];
    readonly metadata?: Readonly<Record<string, unknown>>;
  },
): { order: NewOrder; event: NewOutboxEvent; total: number; iso: string } {
  const createdAt = new Date();
  const iso = createdAt.toISOString();
  const id = randomUUID();
  const items = input.items.map((i) => ({ id: randomUUID(), sku: i.sku, qty: i.qty, price: i.price }));
  const total = items.reduce((sum, i) => sum + Math.round(i.price * 100) * i.qty, 0) / 100;
  const order: NewOrder = {
    id,
    customer_id: input.customer_id,
    total_amount: total.toFixed(2),
    metadata: input.metadata ?? {},
    created_at: createdAt,
    items: items.map((i) => ({ ...i, price: i.price.toFixed(2) })),
  };
  const event: NewOutboxEvent = {
    id: randomUUID(),
    aggregateType: 'order',
    aggregateId: id,
    eventType: 'order_created',
    subject: `${stream}.order_created`,
    payload: orderCreatedPayload({
      id,
      customer_id: input.customer_id,
      total_amount: total,
      created_at: iso,
      items: items.map((i) => ({ ...i, created_at: iso })),
    }),
    createdAt,
  };
  return { order, event, total, iso };
}

/** An order_created payload as the API writes it (about 450 bytes), for bulk-loaded backlogs. */
export function eventPayload(i: number): string {
  const now = new Date().toISOString();
  return JSON.stringify({
    event_type: 'order_created',
    order_id: randomUUID(),
    customer_id: randomUUID(),
    status: 'draft',
    total_amount: 89.97,
    items: [
      { id: randomUUID(), sku: 'WIDGET-001', qty: 2, price: 19.99, created_at: now },
      { id: randomUUID(), sku: `GADGET-${i % 1000}`, qty: 1, price: 49.99, created_at: now },
    ],
    created_at: now,
  });
}

/** Percentile of sorted numbers (nearest rank). */
export function percentile(sorted: readonly number[], p: number): number {
  if (sorted.length === 0) return Number.NaN;
  const index = Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1));
  return sorted[index] ?? Number.NaN;
}

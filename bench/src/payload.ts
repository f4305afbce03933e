import { randomUUID } from 'node:crypto';

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

// The contract's events written out field by field from CONTRACT.md: an oracle that does not share
// code with the payload builders in @orders/events, so a test can catch those being wrong.

/** The contract's order_created event for an order as the API returned it, written out field by field. */
export function contractEvent(order: {
  id: string;
  customer_id: string;
  total_amount: number;
  created_at: string;
  items: { id: string; sku: string; qty: number; price: number; created_at: string }[];
}) {
  return {
    event_type: 'order_created',
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

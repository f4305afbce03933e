import type { RouteHandler } from '@hono/zod-openapi';
import type { Context } from 'hono';
import { parseIdempotencyKey, requestHash } from '../idempotency.js';
import type { Metrics } from '../metrics.js';
import type { AppEnv, EventOrigin } from '../trace.js';
import type { orderRoutes } from './orders.routes.js';
import type { OrdersService } from './orders.service.js';

type Routes = ReturnType<typeof orderRoutes>;

/** The request's trace context and caller, for the events it writes. */
function originOf(c: Context<AppEnv>): EventOrigin {
  return { trace: c.get('trace'), actor: c.get('principal')?.subject };
}

/** HTTP in, HTTP out: validation already happened in the route's schemas, the service does the work. */
export function orderHandlers(service: OrdersService, metrics: Metrics) {
  const createOrder: RouteHandler<Routes['createOrder'], AppEnv> = async (c) => {
    const key = parseIdempotencyKey(c.req.header('idempotency-key'));
    const input = c.req.valid('json');
    // The validated input, not the raw body: unknown fields are dropped, and the raw body may nest too deep
    // for the recursive canonical form (a stack overflow, a 500).
    const idempotency = key === undefined ? undefined : { key, requestHash: requestHash(input) };
    const result = await service.create(input, originOf(c), idempotency);
    if (result.replayed) {
      // The first response again, byte for byte, marked as a replay; nothing was created.
      metrics.idempotentReplays.inc();
      return new Response(result.body, {
        status: result.status,
        headers: {
          'content-type': 'application/json',
          location: `/orders/${result.orderId}`,
          'idempotent-replayed': 'true',
        },
      }) as never;
    }
    metrics.ordersCreated.inc();
    c.header('Location', `/orders/${result.order.id}`);
    return c.json(result.order, 201);
  };

  const getOrder: RouteHandler<Routes['getOrder'], AppEnv> = async (c) => {
    return c.json(await service.get(c.req.valid('param').id), 200);
  };

  const updateOrder: RouteHandler<Routes['updateOrder'], AppEnv> = async (c) => {
    const { id } = c.req.valid('param');
    const { order } = await service.setStatus(id, c.req.valid('json').status, originOf(c));
    return c.json(order, 200);
  };

  const cancelOrder: RouteHandler<Routes['cancelOrder'], AppEnv> = async (c) => {
    const { order } = await service.setStatus(c.req.valid('param').id, 'cancelled', originOf(c));
    return c.json(order, 200);
  };

  const listOrders: RouteHandler<Routes['listOrders'], AppEnv> = async (c) => {
    return c.json(await service.list(c.req.valid('query')), 200);
  };

  return { createOrder, getOrder, updateOrder, cancelOrder, listOrders };
}

import type { OpenAPIHono } from '@hono/zod-openapi';
import type { Metrics } from '../metrics.js';
import type { AppEnv } from '../trace.js';
import { orderHandlers } from './orders.handlers.js';
import { orderRoutes } from './orders.routes.js';
import { type OrderLimits, orderSchemas } from './orders.schemas.js';
import type { OrdersService } from './orders.service.js';

/** Mounts the orders routes on the app. */
export function registerOrderRoutes(
  app: OpenAPIHono<AppEnv>,
  deps: { service: OrdersService; metrics: Metrics; limits: OrderLimits },
): void {
  const routes = orderRoutes(orderSchemas(deps.limits));
  const handlers = orderHandlers(deps.service, deps.metrics);
  // Documented with its Idempotency-Key header, mounted without a validator for it: the handler parses
  // the key itself (a malformed key is a 400, not a 422), and a header validator copies every request
  // header into a web Headers object per request (~10% of the API's CPU per order, stubbed database).
  app.openAPIRegistry.registerPath(routes.createOrder);
  const { headers: _documented, ...request } = routes.createOrder.request;
  app.openapi({ ...routes.createOrder, request, hide: true }, handlers.createOrder);
  app.openapi(routes.listOrders, handlers.listOrders);
  app.openapi(routes.getOrder, handlers.getOrder);
  app.openapi(routes.updateOrder, handlers.updateOrder);
  app.openapi(routes.cancelOrder, handlers.cancelOrder);
}

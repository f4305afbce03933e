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
  app.openapi(routes.createOrder, handlers.createOrder);
  app.openapi(routes.listOrders, handlers.listOrders);
  app.openapi(routes.getOrder, handlers.getOrder);
  app.openapi(routes.updateOrder, handlers.updateOrder);
  app.openapi(routes.cancelOrder, handlers.cancelOrder);
}

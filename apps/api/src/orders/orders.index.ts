import type { OpenAPIHono } from '@hono/zod-openapi';
import { type AuthGuard, BEARER_SCHEME } from '@orders/auth';
import type { Metrics } from '../metrics.js';
import type { AppEnv } from '../trace.js';
import { orderHandlers } from './orders.handlers.js';
import { orderRoutes } from './orders.routes.js';
import { type OrderLimits, orderSchemas } from './orders.schemas.js';
import type { OrdersService } from './orders.service.js';

/** Mounts the orders routes on the app, each behind the guard for the scope its contract declares. */
export function registerOrderRoutes(
  app: OpenAPIHono<AppEnv>,
  deps: { service: OrdersService; metrics: Metrics; limits: OrderLimits; guard: AuthGuard },
): void {
  const routes = orderRoutes(orderSchemas(deps.limits));
  const handlers = orderHandlers(deps.service, deps.metrics);
  // The scope enforced is read from the route's own `security`, so the document and the check cannot
  // drift apart; a route that declares none does not start.
  const guarded = <R extends { operationId?: string; security?: Array<Record<string, string[]>> }>(
    route: R,
  ) => {
    const scope = route.security?.[0]?.[BEARER_SCHEME]?.[0];
    if (scope === undefined) throw new Error(`route ${route.operationId} declares no ${BEARER_SCHEME} scope`);
    return { ...route, middleware: deps.guard.requireScope(scope) };
  };
  // Documented with its Idempotency-Key header, mounted without a validator for it: the handler parses
  // the key itself (a malformed key is a 400, not a 422), and a header validator copies every request
  // header into a web Headers object per request (~10% of the API's CPU per order, stubbed database).
  app.openAPIRegistry.registerPath(routes.createOrder);
  const { headers: _documented, ...request } = routes.createOrder.request;
  app.openapi(guarded({ ...routes.createOrder, request, hide: true }), handlers.createOrder);
  app.openapi(guarded(routes.listOrders), handlers.listOrders);
  app.openapi(guarded(routes.getOrder), handlers.getOrder);
  app.openapi(guarded(routes.updateOrder), handlers.updateOrder);
  app.openapi(guarded(routes.cancelOrder), handlers.cancelOrder);
}

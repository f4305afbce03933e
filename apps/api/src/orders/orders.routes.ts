import { createRoute } from '@hono/zod-openapi';
import { securityFor } from '@orders/auth';
import { problemResponse } from '../problem.js';
import type { OrderSchemas } from './orders.schemas.js';

/**
 * The scopes of the orders API: reading needs `orders:read`, every change `orders:write`. Each route
 * below declares its scope in `security`, and the wiring enforces what the route declares.
 */
export const ORDER_SCOPES = { read: 'orders:read', write: 'orders:write' } as const;

/** The orders part of the OpenAPI contract: one `createRoute` per operation, with every error it can answer. */
export function orderRoutes(s: OrderSchemas) {
  const invalid = problemResponse('Validation failed: `errors` names each field and why.');
  const unavailable = problemResponse(
    'The database is unreachable or overloaded, or the token issuer keys cannot be fetched and none ' +
      'cached matches; retry after `Retry-After` seconds.',
  );
  const unauthorized = {
    ...problemResponse(
      'No bearer token, or one that is malformed, expired, badly signed or from another issuer or ' +
        'audience (`code`: `missing_token` or `invalid_token`).',
    ),
    headers: {
      'WWW-Authenticate': {
        description:
          'RFC 6750: `Bearer`, with `error="invalid_token"` and a description when a token was sent.',
        schema: { type: 'string' },
      },
    },
  } as const;
  const forbidden = (scope: string) =>
    ({
      ...problemResponse(
        `The token is valid but lacks the scope ${scope} (\`code\`: \`insufficient_scope\`).`,
      ),
      headers: {
        'WWW-Authenticate': {
          description: `RFC 6750: \`Bearer error="insufficient_scope", scope="${scope}"\`.`,
          schema: { type: 'string' },
        },
      },
    }) as const;
  const read = { security: securityFor(ORDER_SCOPES.read) };
  const write = { security: securityFor(ORDER_SCOPES.write) };
  const denied = (scope: string) => ({ 401: unauthorized, 403: forbidden(scope) });

  const createOrder = createRoute({
    method: 'post',
    path: '/orders',
    operationId: 'createOrder',
    tags: ['orders'],
    ...write,
    summary: 'Create an order; its order_created event is published by the relay.',
    description:
      'With an `Idempotency-Key` header (IETF httpapi draft), a retry with the same key and the same body ' +
      'returns the first response (status and body, marked `Idempotent-Replayed: true`) and creates ' +
      'nothing; the same key with a different body is 422 `idempotency_key_reused`; a request racing one ' +
      'with the same key waits for it and then gets its response. Keys are kept for IDEMPOTENCY_TTL ' +
      '(default 24 h).',
    request: {
      headers: s.idempotencyHeaders,
      body: { required: true, content: { 'application/json': { schema: s.createOrder } } },
    },
    responses: {
      201: {
        description:
          'Created (or, with `Idempotent-Replayed: true`, the stored response of the first request).',
        headers: {
          Location: { description: 'The new order: /orders/{id}.', schema: { type: 'string' } },
          'Idempotent-Replayed': {
            description:
              'Present (true) when this is the stored response to an earlier request with the same key.',
            schema: { type: 'string', enum: ['true'] },
          },
        },
        content: { 'application/json': { schema: s.order } },
      },
      400: problemResponse('The body is not valid JSON, or the Idempotency-Key header is malformed.'),
      413: problemResponse('The body is larger than the configured limit.'),
      415: problemResponse('The content type is not application/json.'),
      422: invalid,
      ...denied(ORDER_SCOPES.write),
      503: unavailable,
    },
  });

  const getOrder = createRoute({
    method: 'get',
    path: '/orders/{id}',
    operationId: 'getOrder',
    tags: ['orders'],
    ...read,
    summary: 'Read one order with its items.',
    request: { params: s.idParam },
    responses: {
      200: { description: 'The order.', content: { 'application/json': { schema: s.order } } },
      404: problemResponse('No order has this id.'),
      422: problemResponse('The id is not a UUID.'),
      ...denied(ORDER_SCOPES.read),
      503: unavailable,
    },
  });

  const updateOrder = createRoute({
    method: 'patch',
    path: '/orders/{id}',
    operationId: 'updateOrderStatus',
    tags: ['orders'],
    ...write,
    summary: "Change an order's status along its lifecycle; bumps updated_at and emits order_status_changed.",
    description:
      'Allowed: draft -> placed | cancelled, placed -> shipped | cancelled, shipped -> completed; cancelled ' +
      'and completed are final. The current status again is a no-op 200 without an event. Any other ' +
      'change is 409 with `current_status` and `allowed_next`. Each real change writes an ' +
      '`order_status_changed` event (subject `<stream>.order_status_changed`) in the same transaction.',
    request: {
      params: s.idParam,
      body: { required: true, content: { 'application/json': { schema: s.updateStatus } } },
    },
    responses: {
      200: { description: 'The updated order.', content: { 'application/json': { schema: s.order } } },
      400: problemResponse('The body is not valid JSON.'),
      404: problemResponse('No order has this id.'),
      409: problemResponse('The lifecycle does not allow this change from the current status.'),
      413: problemResponse('The body is larger than the configured limit.'),
      415: problemResponse('The content type is not application/json.'),
      422: problemResponse('Unknown status, bad body, or the id is not a UUID.'),
      ...denied(ORDER_SCOPES.write),
      503: unavailable,
    },
  });

  const cancelOrder = createRoute({
    method: 'post',
    path: '/orders/{id}/cancel',
    operationId: 'cancelOrder',
    tags: ['orders'],
    ...write,
    summary: 'Cancel an order (the same as PATCH with status cancelled).',
    request: { params: s.idParam },
    responses: {
      200: { description: 'The cancelled order.', content: { 'application/json': { schema: s.order } } },
      404: problemResponse('No order has this id.'),
      409: problemResponse('The order is shipped or completed: it cannot be cancelled.'),
      422: problemResponse('The id is not a UUID.'),
      ...denied(ORDER_SCOPES.write),
      503: unavailable,
    },
  });

  const listOrders = createRoute({
    method: 'get',
    path: '/orders',
    operationId: 'listOrders',
    tags: ['orders'],
    ...read,
    summary: 'A page of orders, newest first; follow next_cursor for the next page.',
    request: { query: s.listQuery },
    responses: {
      200: { description: 'One page.', content: { 'application/json': { schema: s.orderPage } } },
      422: problemResponse(
        'A query parameter is invalid (limit out of 1..100, bad cursor, status or customer_id).',
      ),
      ...denied(ORDER_SCOPES.read),
      503: unavailable,
    },
  });

  return { createOrder, getOrder, updateOrder, cancelOrder, listOrders };
}

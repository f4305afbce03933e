import { randomUUID } from 'node:crypto';
import {
  changeOrderStatus,
  type Db,
  findOrder,
  insertOrderWithEvent,
  insertOrderWithEventIdempotent,
  listOrders,
  type OrderCursor,
  type OrderStatus,
  type OrderWithItems,
  type OutboxNotifier,
} from '@orders/db';
import {
  AggregateType,
  canTransition,
  EventType,
  ORDER_TRANSITIONS,
  orderCreatedPayload,
  orderStatusChangedPayload,
  subjectFor,
  UUID_PATTERN,
} from '@orders/events';
import { ProblemError } from '@orders/http-problem';
import { centsToDecimal, centsToNumber, decimalToNumber, toCents } from '../money.js';
import { type EventOrigin, eventHeaders } from '../trace.js';
import type { CreateOrderInput, Order } from './orders.schemas.js';

/** Largest total NUMERIC(14,2) holds, in cents. */
const MAX_TOTAL_CENTS = 99_999_999_999_999n;

export interface OrdersServiceDeps {
  readonly db: Db;
  /** The stream name: events go to `<stream>.<event_type>`. */
  readonly stream: string;
  /** Wakes the relay after a commit; absent when the database trigger notifies (or nobody listens). */
  readonly notifier?: OutboxNotifier | undefined;
  readonly now?: () => Date;
  /** How long an Idempotency-Key is remembered (default 24 h). */
  readonly idempotencyTtlMs?: number;
}

/** A create behind an Idempotency-Key: the key and the hash of the request body. */
export interface IdempotencyRequest {
  readonly key: string;
  readonly requestHash: string;
}

/** What create returns: the new order, or the stored response of the request that first used the key. */
export type CreateResult =
  | { readonly replayed: false; readonly order: Order }
  | { readonly replayed: true; readonly status: number; readonly body: string; readonly orderId: string };

/** What the API does with orders, independent of HTTP. */
export function createOrdersService({
  db,
  stream,
  notifier,
  now = () => new Date(),
  idempotencyTtlMs = 24 * 3_600_000,
}: OrdersServiceDeps) {
  return {
    /**
     * Writes the order, its items and its `order_created` outbox row atomically. Ids and the
     * timestamp are chosen here, so the response, the rows and the event carry identical values
     * without reading anything back.
     */
    async create(
      input: CreateOrderInput,
      origin?: EventOrigin,
      idempotency?: IdempotencyRequest,
    ): Promise<CreateResult> {
      let totalCents = 0n;
      const lines = input.items.map((item) => {
        const priceCents = toCents(item.price);
        totalCents += priceCents * BigInt(item.qty);
        return { id: randomUUID(), sku: item.sku, qty: item.qty, priceCents };
      });
      if (totalCents > MAX_TOTAL_CENTS) {
        throw new ProblemError(422, 'validation_failed', 'items: the order total exceeds 999999999999.99', [
          { field: 'items', pointer: '/items', message: 'the order total exceeds 999999999999.99' },
        ]);
      }

      const createdAt = now();
      const iso = createdAt.toISOString();
      const order: Order = {
        id: randomUUID(),
        // PostgreSQL stores a uuid in lower case: the response and the event must carry what a read returns.
        customer_id: input.customer_id.toLowerCase(),
        status: 'draft',
        total_amount: centsToNumber(totalCents),
        items: lines.map((l) => ({
          id: l.id,
          sku: l.sku,
          qty: l.qty,
          price: centsToNumber(l.priceCents),
          created_at: iso,
        })),
        created_at: iso,
        updated_at: iso,
        metadata: input.metadata,
      };

      const row = {
        id: order.id,
        customer_id: order.customer_id,
        total_amount: centsToDecimal(totalCents),
        metadata: order.metadata,
        created_at: createdAt,
        items: lines.map((l) => ({
          id: l.id,
          sku: l.sku,
          qty: l.qty,
          price: centsToDecimal(l.priceCents),
        })),
      };
      const headers = eventHeaders(origin);
      const event = {
        id: randomUUID(),
        aggregateType: AggregateType.Order,
        aggregateId: order.id,
        eventType: EventType.OrderCreated,
        subject: subjectFor(stream, EventType.OrderCreated),
        payload: orderCreatedPayload(order),
        ...(headers ? { headers } : {}),
        createdAt,
      };
      // One statement, so one transaction: the order, its items and its event commit together or not
      // at all, in one round trip (see insertOrderWithEvent for the numbers). With an Idempotency-Key,
      // the key and the response to replay are part of the same statement.
      if (idempotency) {
        const result = await insertOrderWithEventIdempotent(db, row, event, {
          key: idempotency.key,
          requestHash: idempotency.requestHash,
          statusCode: 201,
          response: JSON.stringify(order),
          expiresAt: new Date(createdAt.getTime() + idempotencyTtlMs),
        });
        if (!result.created) {
          if (result.stored.requestHash !== idempotency.requestHash) {
            throw new ProblemError(
              422,
              'idempotency_key_reused',
              'this Idempotency-Key was used with a different request body; use a new key for a new request',
            );
          }
          return {
            replayed: true,
            status: result.stored.statusCode,
            body: result.stored.response,
            orderId: result.stored.orderId,
          };
        }
      } else {
        await insertOrderWithEvent(db, row, event);
      }
      notifier?.hint();
      return { replayed: false, order };
    },

    async get(id: string): Promise<Order> {
      const row = await findOrder(db, id);
      if (!row) throw notFound(id);
      return toOrder(row);
    },

    /**
     * Moves the order along its lifecycle and writes an `order_status_changed` event in the same
     * transaction. The current status again is a no-op (no event); a move the lifecycle does not
     * allow is 409 naming the allowed next statuses. `changed` tells the caller whether anything happened.
     */
    async setStatus(
      id: string,
      status: OrderStatus,
      origin?: EventOrigin,
    ): Promise<{ order: Order; changed: boolean }> {
      const changedAt = now();
      const headers = eventHeaders(origin);
      const result = await changeOrderStatus(
        db,
        id,
        status,
        changedAt,
        (from) => canTransition(from, status),
        (from) => ({
          id: randomUUID(),
          aggregateType: AggregateType.Order,
          aggregateId: id,
          eventType: EventType.OrderStatusChanged,
          subject: subjectFor(stream, EventType.OrderStatusChanged),
          payload: orderStatusChangedPayload({
            order_id: id,
            from,
            to: status,
            changed_at: changedAt.toISOString(),
          }),
          ...(headers ? { headers } : {}),
          createdAt: changedAt,
        }),
      );
      switch (result.kind) {
        case 'not_found':
          throw notFound(id);
        case 'refused': {
          const allowed = ORDER_TRANSITIONS[result.from];
          throw new ProblemError(
            409,
            'invalid_transition',
            `order ${id} is ${result.from}: it cannot become ${status}` +
              (allowed.length ? ` (allowed next: ${allowed.join(', ')})` : ` (${result.from} is final)`),
            undefined,
            { extensions: { current_status: result.from, allowed_next: [...allowed] } },
          );
        }
        case 'unchanged':
          return { order: toOrder(result.order), changed: false };
        case 'changed':
          notifier?.hint();
          return { order: toOrder(result.order), changed: true };
      }
    },

    async list(query: {
      limit: number;
      cursor?: string | undefined;
      customer_id?: string | undefined;
      status?: OrderStatus | undefined;
    }): Promise<{ orders: Order[]; next_cursor: string | null }> {
      const page = await listOrders(db, {
        limit: query.limit,
        after: query.cursor === undefined ? undefined : decodeCursor(query.cursor),
        customer_id: query.customer_id,
        status: query.status,
      });
      return { orders: page.orders.map(toOrder), next_cursor: page.next ? encodeCursor(page.next) : null };
    },
  };
}
export type OrdersService = ReturnType<typeof createOrdersService>;

function notFound(id: string): ProblemError {
  return new ProblemError(404, 'not_found', `order ${id} does not exist`);
}

/** A stored order as the API renders it: exact money as JSON numbers, ISO 8601 UTC timestamps. */
export function toOrder(row: OrderWithItems): Order {
  return {
    id: row.id,
    customer_id: row.customer_id,
    status: row.status,
    total_amount: decimalToNumber(row.total_amount),
    items: row.items.map((i) => ({
      id: i.id,
      sku: i.sku,
      qty: i.qty,
      price: decimalToNumber(i.price),
      created_at: i.created_at.toISOString(),
    })),
    created_at: row.created_at.toISOString(),
    updated_at: row.updated_at.toISOString(),
    metadata: row.metadata,
  };
}

/**
 * Cursors are opaque to clients: base64url of the last row's `[created_at, id]`, the timestamp to the
 * microsecond as PostgreSQL stores it. Cursors issued before carried milliseconds
 * (`toISOString()`); they are still accepted, so a client paging across a deploy goes on, with the
 * old precision for that one step.
 */
export function encodeCursor(c: OrderCursor): string {
  return Buffer.from(JSON.stringify([c.created_at, c.id])).toString('base64url');
}

// ISO 8601 UTC with milliseconds (old cursors) or microseconds (current ones), nothing else.
const CURSOR_TIME = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}(?:\d{3})?Z$/;

export function decodeCursor(cursor: string): OrderCursor {
  const invalid = new ProblemError(422, 'validation_failed', 'cursor: not a cursor this API issued', [
    { field: 'cursor', pointer: '/cursor', message: 'not a cursor this API issued' },
  ]);
  let parsed: unknown;
  try {
    parsed = JSON.parse(Buffer.from(cursor, 'base64url').toString('utf8'));
  } catch (err) {
    throw Object.assign(invalid, { cause: err });
  }
  if (!Array.isArray(parsed) || parsed.length !== 2) throw invalid;
  const [ts, id] = parsed as unknown[];
  if (typeof ts !== 'string' || typeof id !== 'string' || !UUID_PATTERN.test(id) || !CURSOR_TIME.test(ts))
    throw invalid;
  // The text goes to PostgreSQL as is: it must be a real instant (no February 30th, no hour 24, no
  // year 0), or the cast fails there as a 500. Date rolls such values over, so compare the round trip.
  const ms = `${ts.slice(0, 23)}Z`;
  const date = new Date(ms);
  if (Number.isNaN(date.getTime()) || date.getUTCFullYear() < 1 || date.toISOString() !== ms) throw invalid;
  return { created_at: ts, id };
}

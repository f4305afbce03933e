import { CompiledQuery, type Kysely, type RawBuilder, sql, type Transaction } from 'kysely';
import { poolOf } from './database.js';
import { type NamedStatement, namedStatement, type Param } from './named-statement.js';
import { type NewOrder, orderValues } from './orders.js';
import { type NewOutboxEvent, outboxValues } from './outbox.js';
import type { Database } from './schema.js';

/** The values of the create statement, by name. */
export interface CreateOrderParams {
  readonly order_id: string;
  readonly customer_id: string;
  readonly total_amount: string;
  /** JSON text. */
  readonly metadata: string;
  /** The order's and its items' `created_at`, and the order's `updated_at`. */
  readonly created_at: Date;
  readonly item_ids: readonly string[];
  readonly item_skus: readonly string[];
  readonly item_qtys: readonly number[];
  readonly item_prices: readonly string[];
  readonly event_id: string;
  readonly aggregate_type: string;
  readonly aggregate_id: string;
  readonly event_type: string;
  readonly subject: string;
  /** JSON text. */
  readonly payload: string;
  /** JSON text. */
  readonly headers: string;
  readonly event_created_at: Date;
}

/** The create statement's values plus the idempotency key's row. */
export interface CreateOrderIdempotentParams extends CreateOrderParams {
  readonly key: string;
  readonly request_hash: string;
  readonly status_code: number;
  readonly response: string;
  readonly expires_at: Date;
}

type PgType = 'uuid' | 'text' | 'numeric' | 'json' | 'jsonb' | 'timestamptz';

/**
 * `$n::type`, for a parameter in a SELECT list: there PostgreSQL does not take its type from the
 * target column as it does in `VALUES`, so a parameter first met in a SELECT list needs it spelled
 * out. Written on every such use, also where a `VALUES` use already fixed the type: a cast to a
 * parameter's own type is planned away.
 */
function typed<P, K extends keyof P & string>(p: Param<P>, name: K, type: PgType): RawBuilder<P[K]> {
  return sql<P[K]>`${p(name)}::${sql.raw(type)}`;
}

const ITEM_COLUMNS = ['id', 'order_id', 'position', 'sku', 'qty', 'price', 'created_at'] as const;

/**
 * The items as rows: unnest over one array per column, so the statement has one shape for any number
 * of items and can be prepared once per connection; `position` is the array index from 0.
 */
function itemRows(db: Kysely<Database>, p: Param<CreateOrderParams>) {
  const items = sql<{
    id: string;
    sku: string;
    qty: number;
    price: string;
    ord: number;
  }>`unnest(${p('item_ids')}::uuid[], ${p('item_skus')}::text[], ${p('item_qtys')}::int[], ${p('item_prices')}::numeric[]) WITH ORDINALITY`;
  return db
    .selectFrom(items.as<'item'>(sql`item (id, sku, qty, price, ord)`))
    .select((eb) => [
      'item.id',
      typed(p, 'order_id', 'uuid').as('order_id'),
      eb.cast<number>(eb('item.ord', '-', sql.lit(1)), 'integer').as('position'),
      'item.sku',
      'item.qty',
      'item.price',
      typed(p, 'created_at', 'timestamptz').as('created_at'),
    ]);
}

/**
 * The order, its items and its outbox event: one statement of data-modifying CTEs, built with Kysely
 * so that every table and column is checked against schema.ts and every value has a name (which value
 * lands in which column is tested in order-create.test.ts). Compiled once, at module load, to the text
 * the hand-written statement had (17 parameters, one `$n` per name; EXPLAIN VERBOSE gives the same
 * plan), so it runs as the same named prepared statement and costs nothing per order (db-baseline:
 * the same speed as the hand-written statement; figures in the README's architecture section).
 */
export const CREATE_ORDER = namedStatement<CreateOrderParams>('orders_create_with_event', (db, p) =>
  db
    .with('new_order', (db) =>
      db.insertInto('orders').values({
        id: p('order_id'),
        customer_id: p('customer_id'),
        status: sql.lit<'draft'>('draft'),
        total_amount: p('total_amount'),
        metadata: p('metadata'),
        created_at: p('created_at'),
        updated_at: p('created_at'),
      }),
    )
    .with('new_items', (qc) => qc.insertInto('order_items').columns(ITEM_COLUMNS).expression(itemRows(db, p)))
    .insertInto('outbox')
    .values({
      id: p('event_id'),
      aggregate_type: p('aggregate_type'),
      aggregate_id: p('aggregate_id'),
      event_type: p('event_type'),
      subject: p('subject'),
      payload: p('payload'),
      headers: p('headers'),
      created_at: p('event_created_at'),
    }),
);

/**
 * The order, all its items and its outbox event in ONE statement: data-modifying CTEs run as one
 * atomic unit (PostgreSQL commits all three inserts or none; the items' foreign key is checked at the
 * end of the statement, after the order row exists), in one round trip instead of five (BEGIN, three
 * INSERTs, COMMIT), and as a named prepared statement (no parse and plan per order).
 *
 * One CTE statement against BEGIN + 3 INSERTs + COMMIT: +14% in bench/src/db-baseline.ts (figures in
 * the README). Pass a transaction to make it part of a larger one (then unprepared).
 */
export async function insertOrderWithEvent(
  db: Kysely<Database> | Transaction<Database>,
  order: NewOrder,
  event: NewOutboxEvent,
): Promise<void> {
  await run(db, CREATE_ORDER, createParams(order, event));
}

/** The statement's values for an order and its event. */
export function createParams(order: NewOrder, event: NewOutboxEvent): CreateOrderParams {
  const o = orderValues(order);
  const e = outboxValues(event);
  return {
    order_id: o.id,
    customer_id: o.customer_id,
    total_amount: o.total_amount,
    metadata: o.metadata,
    created_at: o.created_at,
    item_ids: order.items.map((i) => i.id),
    item_skus: order.items.map((i) => i.sku),
    item_qtys: order.items.map((i) => i.qty),
    item_prices: order.items.map((i) => i.price),
    event_id: e.id,
    aggregate_type: e.aggregate_type,
    aggregate_id: e.aggregate_id,
    event_type: e.event_type,
    subject: e.subject,
    payload: e.payload,
    headers: e.headers ?? '{}',
    event_created_at: e.created_at ?? o.created_at,
  };
}

/**
 * Through the pool: the named prepared statement (parsed and planned once per connection). Inside a
 * caller's transaction: the same text unprepared, on the transaction's connection.
 */
async function run<P>(
  db: Kysely<Database> | Transaction<Database>,
  statement: NamedStatement<P>,
  params: P,
): Promise<number> {
  const values = statement.values(params);
  const pool = db.isTransaction ? undefined : poolOf(db);
  if (pool) {
    const result = await pool.query({ name: statement.name, text: statement.text, values });
    return result.rowCount ?? 0;
  }
  const result = await db.executeQuery(CompiledQuery.raw(statement.text, values));
  return Number(result.numAffectedRows ?? 0);
}

/**
 * The same statement behind an idempotency key: the key row goes first, and the order, items and
 * event are inserted only if the key was new (or had expired). A concurrent request with the same key
 * waits on the key's unique index until the first commits, then inserts nothing.
 */
export const CREATE_ORDER_IDEMPOTENT = namedStatement<CreateOrderIdempotentParams>(
  'orders_create_idempotent',
  (db, p) => {
    const ifKeyWasFree = db.with('idem', (db) =>
      db
        .insertInto('idempotency_keys')
        .values({
          key: p('key'),
          request_hash: p('request_hash'),
          status_code: p('status_code'),
          response: p('response'),
          order_id: p('order_id'),
          created_at: p('created_at'),
          expires_at: p('expires_at'),
        })
        .onConflict((oc) =>
          oc
            .column('key')
            .doUpdateSet((eb) => ({
              request_hash: eb.ref('excluded.request_hash'),
              status_code: eb.ref('excluded.status_code'),
              response: eb.ref('excluded.response'),
              order_id: eb.ref('excluded.order_id'),
              created_at: eb.ref('excluded.created_at'),
              expires_at: eb.ref('excluded.expires_at'),
            }))
            .where('idempotency_keys.expires_at', '<', sql<Date>`now()`),
        )
        .returning(sql.lit(1).as('one')),
    );
    // Built outside the WITH (a sub-select from `ifKeyWasFree` would carry the WITH clause along),
    // with the CTE's type added so `idem` is a known table.
    const inner = db.withTables<{ idem: { one: number } }>();
    const keyWasFree = inner.selectFrom('idem').select(sql.lit(1).as('one'));
    return ifKeyWasFree
      .with('new_order', (qc) =>
        qc
          .insertInto('orders')
          .columns(['id', 'customer_id', 'status', 'total_amount', 'metadata', 'created_at', 'updated_at'])
          .expression(
            inner
              .selectNoFrom([
                typed(p, 'order_id', 'uuid').as('id'),
                typed(p, 'customer_id', 'uuid').as('customer_id'),
                sql.lit<'draft'>('draft').as('status'),
                typed(p, 'total_amount', 'numeric').as('total_amount'),
                typed(p, 'metadata', 'jsonb').as('metadata'),
                typed(p, 'created_at', 'timestamptz').as('created_at'),
                typed(p, 'created_at', 'timestamptz').as('updated_at'),
              ])
              .where((eb) => eb.exists(keyWasFree)),
          ),
      )
      .with('new_items', (qc) =>
        qc
          .insertInto('order_items')
          .columns(ITEM_COLUMNS)
          .expression(itemRows(db, p).where((eb) => eb.exists(keyWasFree))),
      )
      .insertInto('outbox')
      .columns([
        'id',
        'aggregate_type',
        'aggregate_id',
        'event_type',
        'subject',
        'payload',
        'headers',
        'created_at',
      ])
      .expression(
        inner
          .selectNoFrom([
            typed(p, 'event_id', 'uuid').as('id'),
            typed(p, 'aggregate_type', 'text').as('aggregate_type'),
            typed(p, 'aggregate_id', 'text').as('aggregate_id'),
            typed(p, 'event_type', 'text').as('event_type'),
            typed(p, 'subject', 'text').as('subject'),
            typed(p, 'payload', 'json').as('payload'),
            typed(p, 'headers', 'jsonb').as('headers'),
            typed(p, 'event_created_at', 'timestamptz').as('created_at'),
          ])
          .where((eb) => eb.exists(keyWasFree)),
      );
  },
);

/** What an idempotency key stores: the request's hash and the response to replay. */
export interface IdempotentRequest {
  readonly key: string;
  readonly requestHash: string;
  readonly statusCode: number;
  readonly response: string;
  readonly expiresAt: Date;
}

/** A stored key, as a retry finds it. */
export interface StoredIdempotencyKey {
  readonly requestHash: string;
  readonly statusCode: number;
  readonly response: string;
  readonly orderId: string;
}

/**
 * {@link insertOrderWithEvent} behind an idempotency key, in the same single statement. Returns
 * `created` when this call wrote the order, otherwise the key as stored by the request that did.
 */
export async function insertOrderWithEventIdempotent(
  db: Kysely<Database>,
  order: NewOrder,
  event: NewOutboxEvent,
  request: IdempotentRequest,
): Promise<{ readonly created: true } | { readonly created: false; readonly stored: StoredIdempotencyKey }> {
  const params: CreateOrderIdempotentParams = {
    ...createParams(order, event),
    key: request.key,
    request_hash: request.requestHash,
    status_code: request.statusCode,
    response: request.response,
    expires_at: request.expiresAt,
  };
  for (let attempt = 0; attempt < 3; attempt++) {
    const inserted = await run(db, CREATE_ORDER_IDEMPOTENT, params);
    if (inserted === 1) return { created: true };
    const stored = await db
      .selectFrom('idempotency_keys')
      .select(['request_hash', 'status_code', 'response', 'order_id'])
      .where('key', '=', request.key)
      .executeTakeFirst();
    if (stored) {
      return {
        created: false,
        stored: {
          requestHash: stored.request_hash,
          statusCode: stored.status_code,
          response: stored.response,
          orderId: stored.order_id,
        },
      };
    }
    // Pruned between the two statements: try again, the key is free now.
  }
  throw new Error(`idempotency key ${JSON.stringify(request.key)}: could not insert or read it`);
}

import type { Insertable, Transaction } from 'kysely';
import type { Database, OutboxTable } from './schema.js';

/** One event to hand to the relay. */
export interface NewOutboxEvent {
  /** The event id; the relay sends it as `Nats-Msg-Id`. */
  readonly id: string;
  readonly aggregateType: string;
  readonly aggregateId: string;
  readonly eventType: string;
  readonly subject: string;
  readonly payload: Readonly<Record<string, unknown>>;
  /** Extra NATS headers (e.g. `traceparent`). */
  readonly headers?: Readonly<Record<string, string>>;
  readonly createdAt?: Date;
}

/**
 * Writes an event to the outbox inside the caller's transaction, so it commits or rolls back with
 * the business change. Takes a `Transaction`, never a plain `Kysely`, and checks at run time too:
 * an outbox write outside a transaction would reintroduce the lost-event bug the outbox exists to fix.
 */
export async function enqueueOutboxEvent<DB extends Pick<Database, 'outbox'>>(
  trx: Transaction<DB>,
  event: NewOutboxEvent,
): Promise<void> {
  if (!trx.isTransaction) throw new TypeError('enqueueOutboxEvent must be called inside a transaction');
  // Any schema that has the outbox table (the orders database, a consumer's database that took the
  // outbox migrations): seen through the one table this insert touches.
  const outboxOnly = trx as unknown as Transaction<Pick<Database, 'outbox'>>;
  await outboxOnly.insertInto('outbox').values(outboxValues(event)).execute();
}

/** The row for an event, for callers that fold the outbox insert into their own single statement. */
export function outboxValues(event: NewOutboxEvent): Insertable<OutboxTable> {
  return {
    id: event.id,
    aggregate_type: event.aggregateType,
    aggregate_id: event.aggregateId,
    event_type: event.eventType,
    subject: event.subject,
    payload: JSON.stringify(event.payload),
    headers: JSON.stringify(event.headers ?? {}),
    ...(event.createdAt ? { created_at: event.createdAt } : {}),
  };
}

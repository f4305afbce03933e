import { type Kysely, sql, type Transaction } from 'kysely';
import type { ConsumerTables } from './schema.js';

/** What the inbox records of one event. */
export interface InboxEntry {
  readonly consumer: string;
  readonly eventId: string;
  readonly subject: string;
  readonly streamSeq: number;
}

/**
 * Records the event in the inbox inside the handler's transaction. False when it is there already:
 * handled and committed before (a redelivery after a lost ack, a replay), so the caller must not run
 * the handler. A copy being handled at this moment by another process holds the key's lock: this
 * insert waits for that transaction and then sees its row (false), or takes over if it rolled back.
 */
export async function recordInInbox(trx: Transaction<ConsumerTables>, entry: InboxEntry): Promise<boolean> {
  const { rows } = await sql<{ fresh: number }>`
    INSERT INTO consumer_inbox (consumer, event_id, subject, stream_seq)
    VALUES (${entry.consumer}, ${entry.eventId}, ${entry.subject}, ${entry.streamSeq})
    ON CONFLICT (consumer, event_id) DO NOTHING
    RETURNING 1 AS fresh`.execute(trx);
  return rows.length === 1;
}

/**
 * Deletes one batch of inbox rows of `consumer` processed before `before`; returns how many. Short
 * statements, so retention never holds locks the hot insert waits on for long.
 */
export async function pruneInboxBatch(
  db: Kysely<ConsumerTables>,
  consumer: string,
  before: Date,
  batchSize: number,
): Promise<number> {
  const result = await sql`
    DELETE FROM consumer_inbox WHERE ctid = ANY (ARRAY(
      SELECT ctid FROM consumer_inbox
      WHERE consumer = ${consumer} AND processed_at < ${before}
      LIMIT ${batchSize}
      FOR UPDATE SKIP LOCKED))`.execute(db);
  return Number(result.numAffectedRows ?? 0);
}

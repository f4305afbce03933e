import { type Kysely, sql } from 'kysely';
import type { ConsumerTables } from './schema.js';

export interface DeadLetter {
  readonly consumer: string;
  readonly eventId: string;
  readonly stream: string;
  readonly streamSeq: number;
  readonly subject: string;
  readonly headers: Readonly<Record<string, string>>;
  readonly payload: string;
  readonly deliveries: number;
  readonly error: string;
}

/**
 * Keeps an event that will not be handled, with its last error, in the consumer's database. The same
 * event dead again (its term lost, then redelivered) updates the row: one row per event id.
 */
export async function recordDeadLetter(db: Kysely<ConsumerTables>, dead: DeadLetter): Promise<void> {
  await sql`
    INSERT INTO consumer_dead (consumer, event_id, stream, stream_seq, subject, headers, payload,
                               deliveries, last_error)
    VALUES (${dead.consumer}, ${dead.eventId}, ${dead.stream}, ${dead.streamSeq}, ${dead.subject},
            ${JSON.stringify(dead.headers)}::jsonb, ${dead.payload}, ${dead.deliveries}, ${dead.error})
    ON CONFLICT (consumer, event_id) DO UPDATE
      SET deliveries = EXCLUDED.deliveries, last_error = EXCLUDED.last_error, dead_at = now()`.execute(db);
}

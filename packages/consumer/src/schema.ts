import type { ColumnType } from 'kysely';

/** `consumer_inbox`: the events a consumer handled, by id (migrations/0001_consumer_inbox.sql). */
export interface ConsumerInboxTable {
  consumer: string;
  event_id: string;
  subject: string;
  stream_seq: ColumnType<string, number, never>;
  processed_at: ColumnType<Date, Date | undefined, never>;
}

/** `consumer_dead`: events set aside after their handler failed for good, with the error. */
export interface ConsumerDeadTable {
  consumer: string;
  event_id: string;
  stream: string;
  stream_seq: ColumnType<string, number, never>;
  subject: string;
  headers: ColumnType<Record<string, string>, string, never>;
  payload: string;
  deliveries: number;
  last_error: string;
  dead_at: ColumnType<Date, Date | undefined, never>;
}

/** The tables the consumer package needs in the consumer's database; a service's schema extends it. */
export interface ConsumerTables {
  consumer_inbox: ConsumerInboxTable;
  consumer_dead: ConsumerDeadTable;
}

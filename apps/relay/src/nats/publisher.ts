import type { PublishAck } from '../pub-acks.js';
import type { RowPublishError, TransientPublishError } from './errors.js';

/** What became of one message of a batch. */
export type PublishOutcome = PublishAck | RowPublishError | TransientPublishError;

export interface OutgoingMessage {
  readonly id: string;
  readonly subject: string;
  readonly payload: Uint8Array;
  readonly headers: Readonly<Record<string, string>>;
}

/**
 * What the relay's loop needs of NATS, and nothing more (the NatsLink implements it): publish with
 * `Nats-Msg-Id`, readiness, and the stream lookup for rows beyond the duplicate window.
 */
export interface Publisher {
  readonly ready: boolean;
  /** Resolves when ready, or when the signal aborts. */
  waitReady(signal: AbortSignal): Promise<void>;
  /**
   * Publishes the messages at once, in order, and resolves when each has an outcome, in the same
   * order: its PubAck (a duplicate ack included: the message is in the stream either way), or a
   * RowPublishError or TransientPublishError. Never rejects.
   */
  publishBatch(messages: readonly OutgoingMessage[]): Promise<PublishOutcome[]>;
  /** The stream's duplicate window as last read from the server (undefined before it was). */
  readonly streamDuplicateWindowMs: number | undefined;
  /** Which of `ids` are in the stream on `subject` since `since`. */
  findInStream(subject: string, since: Date, ids: ReadonlySet<string>): Promise<Set<string>>;
}

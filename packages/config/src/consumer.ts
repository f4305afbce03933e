import { z } from 'zod';
import { duration, positiveInt } from './parsers.js';

/**
 * How a durable JetStream consumer runs (packages/consumer): the durable's name, the stream and
 * subjects it reads, redelivery and dead-letter limits, inbox retention.
 */
export const consumerShape = {
  CONSUMER_NAME: z
    .string()
    .regex(/^[A-Za-z0-9_-]+$/, 'must be letters, digits, "_" or "-" (it names the durable consumer)')
    .optional(),
  CONSUMER_ACK_WAIT_MS: positiveInt.min(500).default(10_000),
  CONSUMER_MAX_DELIVER: positiveInt.max(1000).default(5),
  CONSUMER_RETRY_DELAY_MS: positiveInt.default(1000),
  CONSUMER_RETRY_MAX_MS: positiveInt.default(60_000),
  INBOX_RETENTION: duration.default(30 * 86_400_000),
  INBOX_PRUNE_INTERVAL_MS: positiveInt.min(1000).default(600_000),
};

/** What packages/consumer needs of the environment. */
export interface ConsumerConfig {
  /** The durable consumer's name, also the inbox's and dead letters' `consumer` column. */
  readonly name: string;
  /** The stream read (`NATS_STREAM`) and the subjects (`<stream>.>`). */
  readonly stream: string;
  readonly filterSubject: string;
  /** A message not acknowledged within this is redelivered; a handler running longer extends it. */
  readonly ackWaitMs: number;
  /** Deliveries before a message whose handler keeps failing becomes a dead letter. */
  readonly maxDeliver: number;
  /** A failed handler's message comes back after this × 2^(deliveries-1), at most `retryMaxMs`. */
  readonly retryDelayMs: number;
  readonly retryMaxMs: number;
  /** Inbox rows older than this are deleted; 0 keeps them. */
  readonly inboxRetentionMs: number;
  readonly pruneIntervalMs: number;
}

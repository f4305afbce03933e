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

type ConsumerVars = z.infer<z.ZodObject<typeof consumerShape>> & { readonly NATS_STREAM: string };

/** What packages/consumer needs of the environment; `name` unless CONSUMER_NAME says otherwise. */
export function resolveConsumer(e: ConsumerVars, name: string) {
  return Object.freeze({
    /** The durable consumer's name, also the inbox's and dead letters' `consumer` column. */
    name: e.CONSUMER_NAME ?? name,
    /** The stream read (`NATS_STREAM`) and the subjects (`<stream>.>`). */
    stream: e.NATS_STREAM,
    filterSubject: `${e.NATS_STREAM}.>`,
    /** A message not acknowledged within this is redelivered; a handler running longer extends it. */
    ackWaitMs: e.CONSUMER_ACK_WAIT_MS,
    /** Deliveries before a message whose handler keeps failing becomes a dead letter. */
    maxDeliver: e.CONSUMER_MAX_DELIVER,
    /** A failed handler's message comes back after this × 2^(deliveries-1), at most `retryMaxMs`. */
    retryDelayMs: e.CONSUMER_RETRY_DELAY_MS,
    retryMaxMs: e.CONSUMER_RETRY_MAX_MS,
    /** Inbox rows older than this are deleted; 0 keeps them. */
    inboxRetentionMs: e.INBOX_RETENTION,
    pruneIntervalMs: e.INBOX_PRUNE_INTERVAL_MS,
  });
}

/** What packages/consumer needs of the environment. */
export type ConsumerConfig = ReturnType<typeof resolveConsumer>;

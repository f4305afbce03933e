export {
  type ConsumedEvent,
  type Consumer,
  type ConsumerDeps,
  type ConsumerSettings,
  createConsumer,
  type EventHandler,
  type HandlerContext,
  type OutgoingEvent,
} from './consumer.js';
export { type DeadLetter, recordDeadLetter } from './dead-letters.js';
export { type DurableSettings, durableConfig, ensureDurable } from './durable.js';
export { PoisonMessageError } from './errors.js';
export { type InboxEntry, pruneInboxBatch, recordInInbox } from './inbox.js';
export { type ConsumerMetrics, type ConsumerPosition, createConsumerMetrics } from './metrics.js';
export { CONSUMER_MIGRATIONS } from './migrations.js';
export { type InboxRetentionOptions, startInboxRetention } from './retention.js';
export type { ConsumerDeadTable, ConsumerInboxTable, ConsumerTables } from './schema.js';
